// Package lab runs real machines against a real beo master on one host
// without touching any of the host's network interfaces: the QEMU lab used
// by `beo lab`, `make demo`, test/e2e and the boot-timeline benchmark.
//
// # The network
//
// New creates a network namespace with a unique name (beo-lab-PID-RANDOM),
// brings its loopback up, and adds one Linux bridge (default beo0, the
// interface the built-in config names) with STP off, forward delay 0 (so
// a port forwards the moment it comes up, which PXE needs), a fixed MAC
// (otherwise the bridge takes the lowest port MAC and changes address
// under the nodes' ARP caches when a VM joins) and the master's address
// (default 10.99.0.1/24, where the built-in config expects the master).
// Every VM gets its own tap in the namespace, enslaved to the bridge.
// Nothing is created outside the namespace, so deleting it removes every
// link, address and route the lab made. Peer adds another host to the
// cluster network (a second master: peer.go), in a namespace of its own
// joined to the bridge by a veth pair; Close deletes it too.
//
// # Processes
//
// Start runs a program inside the namespace through `ip netns exec NS …`
// (which execs the program, so the pid we hold is the program's own), its
// output appended to DIR/NAME.log. Boot starts a QEMU machine the same way
// (see VM). Processes get SIGKILL as parent-death signal, so a lab whose
// owner is killed does not leave VMs behind. Close stops every process the
// lab started — SIGTERM, then SIGKILL after a grace period, by pid, all at
// the same time — and then deletes the namespace. It never looks for processes by
// name.
//
// # Machines
//
// QEMU writes the guest's serial port to its stdout, which the lab reads:
// each line is kept with the host time it arrived (Machine.Lines) and
// appended to DIR/NAME.serial. Host timestamps are why the serial port is
// a pipe rather than `-serial file:`: they put the guest's own progress on
// the same clock as the master's log and the node-state events, which is
// what the boot timeline is made of. WaitSerial waits for a marker.
//
// The accelerator is TCG unless ProbeAccel proves KVM works: /dev/kvm may
// exist while guests hang under it (nested virtualisation), and QEMU's
// `-accel kvm -accel tcg` fallback does not catch a hang. Without a
// usable /dev/kvm it is TCG at once. Otherwise the probe boots the kernel
// under KVM with no root filesystem and waits up to 10 s for its "Kernel
// panic" line, the last thing a kernel that works prints (a second or two
// where KVM works), and the verdict is remembered (/var/cache/beo/kvm-probe)
// for this host kernel, QEMU and guest kernel, so only the first lab on a
// host where KVM hangs waits the 10 s.
//
// # Clusters
//
// StartCluster puts it together for a beo cluster: it writes a config (the
// built-in default with as many nodes as machines, plus one node line per
// listed machine), starts `beo master` in the namespace, and PXE-boots the
// machines through QEMU's iPXE ROM. Cluster.WaitUp waits for the nodes to be up; Cluster.Timeline
// reads back when each boot phase happened.
package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults of Options.
const (
	DefaultBridge = "beo0"
	DefaultGrace  = 5 * time.Second
)

// DefaultAddr is the master's address on the lab bridge: where the built-in
// config (config.DefaultText) expects the master.
var DefaultAddr = netip.MustParsePrefix("10.99.0.1/24")

// bridgeMAC is the bridge's fixed, locally administered address.
var bridgeMAC = net.HardwareAddr{0x02, 0xbe, 0x0b, 0x00, 0x00, 0x01}

// Options configure a Lab. Zero values mean the defaults.
type Options struct {
	Dir    string       // logs and serial files; created if missing (required)
	Name   string       // namespace name (default beo-lab-PID-RANDOM)
	Bridge string       // bridge name inside the namespace (default beo0)
	Addr   netip.Prefix // the master's address on the bridge (default 10.99.0.1/24)
	Grace  time.Duration
	Log    *slog.Logger
}

// Lab is a network namespace with a bridge, and the processes started in it.
type Lab struct {
	NS     string
	Bridge string
	Addr   netip.Prefix
	Dir    string

	grace time.Duration
	log   *slog.Logger

	mu     sync.Mutex
	procs  []*Proc
	taps   int
	peers  []string // namespaces of Peer hosts, deleted by Close
	closed bool
}

// MissingError says which prerequisite of the lab is absent.
type MissingError struct{ What string }

func (e *MissingError) Error() string { return e.What }

// Check reports whether this host can run a lab: root, the ip tool, and
// (when qemu is true) qemu-system-x86_64. The error is a *MissingError.
func Check(qemu bool) error {
	if os.Geteuid() != 0 {
		return &MissingError{"needs root (network namespaces, taps)"}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return &MissingError{"needs the ip tool (Debian package iproute2)"}
	}
	if qemu {
		if _, err := exec.LookPath(QEMU); err != nil {
			return &MissingError{"needs " + QEMU + " (Debian package qemu-system-x86)"}
		}
	}
	return nil
}

// New creates the namespace and its bridge.
func New(ctx context.Context, o Options) (*Lab, error) {
	if err := Check(false); err != nil {
		return nil, err
	}
	if o.Dir == "" {
		return nil, errors.New("no directory")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	if o.Name == "" {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		o.Name = fmt.Sprintf("beo-lab-%d-%s", os.Getpid(), hex.EncodeToString(b[:]))
	}
	if o.Bridge == "" {
		o.Bridge = DefaultBridge
	}
	if !o.Addr.IsValid() {
		o.Addr = DefaultAddr
	}
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	l := &Lab{NS: o.Name, Bridge: o.Bridge, Addr: o.Addr, Dir: o.Dir, grace: o.Grace, log: o.Log}
	if err := ip(ctx, "netns", "add", l.NS); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"-n", l.NS, "link", "set", "lo", "up"},
		{"-n", l.NS, "link", "add", l.Bridge, "address", bridgeMAC.String(), "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"-n", l.NS, "addr", "add", l.Addr.String(), "dev", l.Bridge},
		{"-n", l.NS, "link", "set", l.Bridge, "up"},
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return nil, errors.Join(err, ip(context.Background(), "netns", "del", l.NS))
		}
	}
	l.log.Info("lab namespace ready", "ns", l.NS, "bridge", l.Bridge, "addr", l.Addr)
	return l, nil
}

// ip runs the ip tool, returning its stderr in the error.
func ip(ctx context.Context, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// AddTap creates the next tap device in the namespace, enslaved to the
// bridge and up, and returns its name (tap0, tap1, …).
func (l *Lab) AddTap(ctx context.Context) (string, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return "", errors.New("lab is closed")
	}
	name := fmt.Sprintf("tap%d", l.taps)
	l.taps++
	l.mu.Unlock()
	if err := ip(ctx, "-n", l.NS, "tuntap", "add", "dev", name, "mode", "tap"); err != nil {
		return "", err
	}
	if err := ip(ctx, "-n", l.NS, "link", "set", name, "master", l.Bridge, "up"); err != nil {
		return "", err
	}
	return name, nil
}

// Proc is a process the lab started.
type Proc struct {
	Name string
	Log  string // stdout and stderr, appended
	Cmd  *exec.Cmd
	// Started is when the process was started.
	Started time.Time

	done chan struct{}
	err  error // valid once done is closed
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error; valid after Done.
func (p *Proc) Err() error { return p.err }

// Pid is the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Stop sends SIGTERM, waits up to grace, then SIGKILL, and waits for the
// exit. It returns nil when the process is gone.
func (p *Proc) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.Cmd.Process.Kill()
		<-p.done
	}
}

// Start runs argv inside the namespace; env is added to this process's
// environment. Output goes to DIR/NAME.log. The process lives until it
// exits or the lab is closed.
func (l *Lab) Start(name string, argv []string, env []string) (*Proc, error) {
	return l.start(l.NS, name, argv, env, nil)
}

// start is Start in namespace ns (the lab's or a Peer's) with an
// optional stdout (QEMU's serial port); stderr, and stdout when out is
// nil, go to the log.
func (l *Lab) start(ns, name string, argv []string, env []string, out *os.File) (*Proc, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("lab is closed")
	}
	logPath := filepath.Join(l.Dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer logf.Close() // the child holds its own copy
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if out != nil {
		cmd.Stdout = out
	}
	cmd.Env = append(os.Environ(), env...)
	// SIGKILL when we die. It is tied to the thread that forks; Go keeps
	// that thread unless a goroutine exits while locked to it, which
	// nothing in a lab's owner does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Log: logPath, Cmd: cmd, Started: time.Now(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	l.log.Info("started", "name", name, "pid", cmd.Process.Pid, "argv", strings.Join(argv, " "))
	return p, nil
}

// Close stops every process the lab started, in parallel, and deletes
// the namespace. It is safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs := l.procs
	l.mu.Unlock()
	var wg sync.WaitGroup
	for i := len(procs) - 1; i >= 0; i-- {
		wg.Add(1)
		go func(p *Proc) {
			defer wg.Done()
			p.Stop(l.grace)
		}(procs[i])
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, ns := range l.peers {
		errs = append(errs, ip(ctx, "netns", "del", ns))
	}
	err := errors.Join(append(errs, ip(ctx, "netns", "del", l.NS))...)
	l.log.Info("lab closed", "ns", l.NS, "err", err)
	return err
}

// Tail returns the last n lines of a file, for error messages.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
