package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// QEMU is the emulator the lab runs.
const QEMU = "qemu-system-x86_64"

// AccelEnv, when set to kvm or tcg, overrides ProbeAccel.
const AccelEnv = "BEO_LAB_ACCEL"

// VM describes one machine.
type VM struct {
	Name   string           // log and serial file names (required)
	MAC    net.HardwareAddr // the NIC's address (required)
	UUID   string           // SMBIOS UUID (default: derived from MAC)
	Memory string           // default 256M
	Accel  string           // tcg (default) or kvm
	NIC    string           // QEMU device model (default virtio-net-pci)
	// Kernel, when set, boots it directly (with Initrd and Append)
	// instead of from the network (-boot n, QEMU's iPXE ROM).
	Kernel, Initrd, Append string
	// NoReboot makes a guest reboot end QEMU instead of resetting the
	// machine. Leave it off for nodes that `bpctl -R` must bring back.
	NoReboot bool
	// Disks are raw image files attached as virtio disks (vda, vdb…, in
	// order). A guest reboot resets the machine but keeps them, as a
	// real node keeps its disks.
	Disks []string
	// Extra are more QEMU arguments, last: e.g. -icount shift=2,sleep=on,
	// which makes the guest's clock count its instructions (at 2^shift
	// ns each) while it runs, so its own timings of CPU-bound work do
	// not depend on how busy the host is (bench/nfs).
	Extra []string
}

// Line is one line the guest wrote to its serial port, with the host time
// it arrived.
type Line struct {
	T    time.Time
	Text string
}

// Machine is a running QEMU.
type Machine struct {
	VM     VM
	Tap    string
	Serial string // the serial port's output, appended
	*Proc

	mu      sync.Mutex
	lines   []Line
	partial string
	changed chan struct{} // closed and replaced on every new line
	eof     bool
}

// Args returns QEMU's command line for vm on tap (without the binary).
// The serial port is QEMU's stdout.
func (vm VM) Args(tap string) []string {
	mem, accel, nic, uuid := vm.Memory, vm.Accel, vm.NIC, vm.UUID
	if mem == "" {
		mem = "256M"
	}
	if accel == "" {
		accel = "tcg"
	}
	if nic == "" {
		nic = "virtio-net-pci"
	}
	if uuid == "" {
		uuid = UUIDFromMAC(vm.MAC)
	}
	a := []string{
		"-accel", accel, "-m", mem, "-smp", "1",
		"-display", "none", "-nodefaults", "-no-user-config",
		"-serial", "stdio", "-uuid", uuid,
		"-netdev", "tap,id=n0,ifname=" + tap + ",script=no,downscript=no",
		"-device", nic + ",netdev=n0,mac=" + vm.MAC.String(),
	}
	if vm.NoReboot {
		a = append(a, "-no-reboot")
	}
	for _, d := range vm.Disks {
		// QEMU's -drive takes commas as separators: a literal one is doubled.
		a = append(a, "-drive", "file="+strings.ReplaceAll(d, ",", ",,")+",if=virtio,format=raw")
	}
	a = append(a, vm.Extra...)
	if vm.Kernel != "" {
		a = append(a, "-kernel", vm.Kernel)
		if vm.Initrd != "" {
			a = append(a, "-initrd", vm.Initrd)
		}
		if vm.Append != "" {
			a = append(a, "-append", vm.Append)
		}
	} else {
		a = append(a, "-boot", "n")
	}
	return a
}

// UUIDFromMAC returns a UUID whose last six bytes are the MAC, so a VM's
// SMBIOS UUID (DHCP option 97) is unique and says which VM it is.
func UUIDFromMAC(mac net.HardwareAddr) string {
	var b [6]byte
	copy(b[:], mac)
	return fmt.Sprintf("00000000-0000-4000-8000-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5])
}

// MAC returns the lab's MAC for machine i: 52:54:00:be:HI:LO.
func MAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x52, 0x54, 0x00, 0xbe, byte(i >> 8), byte(i)}
}

// Boot adds a tap for vm and starts QEMU on it in the namespace.
func (l *Lab) Boot(ctx context.Context, vm VM) (*Machine, error) {
	if vm.Name == "" || len(vm.MAC) != 6 {
		return nil, errors.New("a VM needs a name and a 6-byte MAC")
	}
	tap, err := l.AddTap(ctx)
	if err != nil {
		return nil, err
	}
	m := &Machine{VM: vm, Tap: tap, Serial: filepath.Join(l.Dir, vm.Name+".serial"), changed: make(chan struct{})}
	serial, err := os.OpenFile(m.Serial, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", vm.Name, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		serial.Close()
		return nil, fmt.Errorf("%s: %w", vm.Name, err)
	}
	p, err := l.start(l.NS, vm.Name, append([]string{QEMU}, vm.Args(tap)...), nil, w)
	w.Close()
	if err != nil {
		r.Close()
		serial.Close()
		return nil, err
	}
	m.Proc = p
	go m.read(r, serial)
	return m, nil
}

// read copies the serial port to the serial file and the line list.
func (m *Machine) read(r io.ReadCloser, file *os.File) {
	defer r.Close()
	defer file.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			now := time.Now()
			file.Write(buf[:n])
			m.add(now, string(buf[:n]))
		}
		if err != nil {
			m.mu.Lock()
			if m.partial != "" {
				m.lines = append(m.lines, Line{time.Now(), m.partial})
				m.partial = ""
			}
			m.eof = true
			close(m.changed)
			m.mu.Unlock()
			return
		}
	}
}

func (m *Machine) add(t time.Time, s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s = m.partial + s
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			break
		}
		m.lines = append(m.lines, Line{t, strings.TrimRight(s[:i], "\r")})
		s = s[i+1:]
	}
	m.partial = s
	close(m.changed)
	m.changed = make(chan struct{})
}

// Lines returns every complete serial line so far.
func (m *Machine) Lines() []Line {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Line(nil), m.lines...)
}

// Mark returns the number of serial lines so far, a starting point for
// WaitSerial that ignores everything already printed.
func (m *Machine) Mark() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.lines)
}

// WaitSerial waits until a serial line from index from on contains
// marker, and returns that line. It fails when ctx ends or QEMU exits
// first, quoting the last serial lines.
func (m *Machine) WaitSerial(ctx context.Context, marker string, from int) (Line, int, error) {
	for {
		m.mu.Lock()
		for i := from; i < len(m.lines); i++ {
			if strings.Contains(m.lines[i].Text, marker) {
				l := m.lines[i]
				m.mu.Unlock()
				return l, i, nil
			}
		}
		from = max(from, len(m.lines))
		eof, ch := m.eof, m.changed
		m.mu.Unlock()
		if eof {
			select {
			case <-m.Done():
			case <-time.After(5 * time.Second):
			}
			return Line{}, 0, fmt.Errorf("%s: qemu exited (%v) before serial printed %q; last lines:\n%s", m.Name, m.Err(), marker, m.SerialTail(15))
		}
		select {
		case <-ctx.Done():
			return Line{}, 0, fmt.Errorf("%s: no %q on serial: %w; last lines:\n%s", m.Name, marker, ctx.Err(), m.SerialTail(15))
		case <-ch:
		}
	}
}

// SerialTail returns the last n serial lines, indented, for messages.
func (m *Machine) SerialTail(n int) string {
	ls := m.Lines()
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	var b strings.Builder
	for _, l := range ls {
		b.WriteString("  | " + l.Text + "\n")
	}
	return b.String()
}

// Kernel returns the kernel to boot VMs with: /boot/vmlinuz-VERSION for
// the running kernel's version if it exists, else the newest
// /boot/vmlinuz-* that has a /lib/modules/VERSION directory (the node's
// initrd needs its modules). root is "/" except in tests.
func Kernel(root string) (path, version string, err error) {
	if b, err := os.ReadFile(filepath.Join(root, "proc/sys/kernel/osrelease")); err == nil {
		v := strings.TrimSpace(string(b))
		if usable(root, v) {
			return filepath.Join(root, "boot", "vmlinuz-"+v), v, nil
		}
	}
	ms, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	var vs []string
	for _, m := range ms {
		v := strings.TrimPrefix(filepath.Base(m), "vmlinuz-")
		if usable(root, v) {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return "", "", errors.New("no /boot/vmlinuz-VERSION with /lib/modules/VERSION (Debian package linux-image-amd64)")
	}
	sort.Slice(vs, func(i, j int) bool { return versionLess(vs[i], vs[j]) })
	v := vs[len(vs)-1]
	return filepath.Join(root, "boot", "vmlinuz-"+v), v, nil
}

func usable(root, v string) bool {
	if _, err := os.Stat(filepath.Join(root, "boot", "vmlinuz-"+v)); err != nil {
		return false
	}
	fi, err := os.Stat(filepath.Join(root, "lib", "modules", v))
	return err == nil && fi.IsDir()
}

var numRun = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\d+|\D+`) }) // compiled on first use, not at every beo start

// versionLess compares kernel versions with digit runs as numbers
// (6.1.0-10 after 6.1.0-9).
func versionLess(a, b string) bool {
	pa, pb := numRun().FindAllString(a, -1), numRun().FindAllString(b, -1)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

// DefaultAccelCache is where StartCluster remembers ProbeAccel's verdict.
const DefaultAccelCache = "/var/cache/beo/kvm-probe"

// ProbeTimeout is how long StartCluster's KVM probe waits for the test
// guest's boot (a second or two where KVM works).
const ProbeTimeout = 10 * time.Second

// ProbeAccel returns the accelerator to run VMs with and why:
//
//   - the value of $BEO_LAB_ACCEL if set;
//   - tcg at once when /dev/kvm cannot be opened or creates no VM;
//   - the verdict remembered in the file cache ("" = none), if it was
//     reached on this host kernel with this QEMU and guest kernel;
//   - else the probe's: kvm when a KVM guest booting kernel (no disk, no
//     network, no root filesystem) reaches its "Kernel panic" line within
//     timeout, else tcg. The verdict is written to cache unless ctx ended
//     or QEMU could not be started.
//
// /dev/kvm can exist while guests hang under it (nested virtualisation),
// which only a boot shows, and the probe costs the whole timeout there:
// hence the cache. The probe's QEMU runs outside any namespace (it has no
// NIC), its serial port in dir/kvm-probe.serial, and is killed by pid
// when the probe ends.
func ProbeAccel(ctx context.Context, kernel, dir, cache string, timeout time.Duration) (accel, why string) {
	switch v := os.Getenv(AccelEnv); v {
	case "kvm", "tcg":
		return v, "$" + AccelEnv
	case "":
	default:
		return "tcg", fmt.Sprintf("$%s=%q is neither kvm nor tcg", AccelEnv, v)
	}
	if err := kvmUsable("/dev/kvm"); err != nil {
		return "tcg", err.Error()
	}
	key := probeKey(kernel)
	if cache != "" && key != "" {
		if accel, why, ok := readVerdict(cache, key); ok {
			return accel, why
		}
	}
	accel, why, final := probeKVM(ctx, kernel, dir, timeout)
	if final && cache != "" && key != "" {
		if err := writeVerdict(cache, key, accel, why); err == nil {
			why += "; remembered in " + cache
		}
	}
	return accel, why
}

// kvmUsable reports why dev cannot run a KVM guest, if it visibly cannot:
// it does not open, speaks another API, or creates no VM.
func kvmUsable(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return errors.New("no usable /dev/kvm")
	}
	defer f.Close()
	const (
		kvmGetAPIVersion = 0xae00 // _IO(KVMIO, 0x00)
		kvmCreateVM      = 0xae01 // _IO(KVMIO, 0x01)
	)
	v, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), kvmGetAPIVersion, 0)
	if e != 0 || v != 12 {
		return fmt.Errorf("/dev/kvm speaks no KVM API 12 (%d, %v)", v, e)
	}
	vm, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), kvmCreateVM, 0)
	if e != 0 {
		return fmt.Errorf("/dev/kvm creates no VM: %v", e)
	}
	syscall.Close(int(vm))
	return nil
}

// probeKey names what a verdict depends on: the host kernel, the QEMU
// binary and the guest kernel. "" when one of them cannot be read.
func probeKey(kernel string) string {
	rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	q, err := exec.LookPath(QEMU)
	if err != nil {
		return ""
	}
	var parts []string
	for _, p := range []string{q, kernel} {
		fi, err := os.Stat(p)
		if err != nil {
			return ""
		}
		parts = append(parts, fmt.Sprintf("%s:%d:%d", p, fi.Size(), fi.ModTime().Unix()))
	}
	return "host=" + strings.TrimSpace(string(rel)) + " qemu=" + parts[0] + " guest=" + parts[1]
}

// readVerdict returns the verdict cache holds for key.
func readVerdict(cache, key string) (accel, why string, ok bool) {
	b, err := os.ReadFile(cache)
	if err != nil {
		return "", "", false
	}
	f := strings.SplitN(strings.TrimRight(string(b), "\n"), "\t", 4)
	if len(f) != 4 || f[0] != key || (f[1] != "kvm" && f[1] != "tcg") {
		return "", "", false
	}
	return f[1], fmt.Sprintf("%s; probed %s, remembered in %s (delete it to probe again)", f[2], f[3], cache), true
}

// writeVerdict stores a verdict for key in cache.
func writeVerdict(cache, key, accel, why string) error {
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		return err
	}
	line := strings.Join([]string{key, accel, strings.ReplaceAll(why, "\t", " "), time.Now().Format("2006-01-02")}, "\t") + "\n"
	tmp := cache + ".tmp"
	if err := os.WriteFile(tmp, []byte(line), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, cache)
}

// probeKVM boots kernel under KVM (see ProbeAccel); final is false when
// the verdict says nothing about KVM (QEMU did not start, ctx ended).
func probeKVM(ctx context.Context, kernel, dir string, timeout time.Duration) (accel, why string, final bool) {
	serial := filepath.Join(dir, "kvm-probe.serial")
	os.Remove(serial)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.Command(QEMU, "-accel", "kvm", "-m", "256M", "-smp", "1", "-display", "none",
		"-nodefaults", "-no-user-config", "-no-reboot", "-serial", "file:"+serial,
		"-kernel", kernel, "-append", "console=ttyS0 panic=-1")
	if err := cmd.Start(); err != nil {
		return "tcg", fmt.Sprintf("kvm probe: %v", err), false
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, _ := os.ReadFile(serial); strings.Contains(string(b), "Kernel panic") {
			return "kvm", fmt.Sprintf("a test guest booted under KVM in %v", time.Since(start).Round(10*time.Millisecond)), true
		}
		select {
		case err := <-done:
			done <- err // for the deferred wait
			return "tcg", fmt.Sprintf("a test guest under KVM ended (%v) before booting", err), true
		case <-pctx.Done():
			if ctx.Err() != nil {
				return "tcg", "kvm probe interrupted", false
			}
			return "tcg", fmt.Sprintf("a test guest did not boot under KVM within %v, as happens under nested virtualisation", timeout), true
		case <-tick.C:
		}
	}
}
