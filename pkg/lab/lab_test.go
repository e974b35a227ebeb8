package lab

import (
	"bytes"
	"context"
	"fmt"
	"github.com/beo-cluster/beo/pkg/fstab"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/config"
)

func TestArgs(t *testing.T) {
	mac := MAC(1)
	tests := []struct {
		name string
		vm   VM
		want []string // flags, or flag and value as "-flag value"
		not  []string
	}{
		{"pxe", VM{Name: "n", MAC: mac}, []string{"-boot n", "-accel tcg", "-m 256M", "-uuid 00000000-0000-4000-8000-525400be0001",
			"-device virtio-net-pci,netdev=n0,mac=52:54:00:be:00:01", "-netdev tap,id=n0,ifname=tap7,script=no,downscript=no"}, []string{"-kernel", "-no-reboot"}},
		{"direct", VM{Name: "n", MAC: mac, Kernel: "/k", Initrd: "/i", Append: "console=ttyS0", NoReboot: true, Accel: "kvm", Memory: "192M"},
			[]string{"-kernel /k", "-initrd /i", "-append console=ttyS0", "-accel kvm", "-m 192M", "-no-reboot"}, []string{"-boot"}},
		{"e1000", VM{Name: "n", MAC: mac, NIC: "e1000", UUID: "u"}, []string{"-device e1000,netdev=n0,mac=52:54:00:be:00:01", "-uuid u"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.vm.Args("tap7")
			var pairs []string
			for i := 0; i+1 < len(args); i++ {
				pairs = append(pairs, args[i]+" "+args[i+1])
			}
			for _, w := range tt.want {
				if !slices.Contains(pairs, w) && !slices.Contains(args, w) {
					t.Errorf("args %q: missing %q", args, w)
				}
			}
			for _, n := range tt.not {
				if slices.Contains(args, n) {
					t.Errorf("args %q: unexpected %q", args, n)
				}
			}
		})
	}
}

func TestVersionLess(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"6.1.0-9-amd64", "6.1.0-10-amd64", true},
		{"6.1.0-10-amd64", "6.1.0-9-amd64", false},
		{"5.10.0-30-amd64", "6.1.0-1-amd64", true},
		{"6.1.0-9-amd64", "6.1.0-9-amd64", false},
		{"6.1", "6.1.1", true},
	}
	for _, tt := range tests {
		if got := versionLess(tt.a, tt.b); got != tt.want {
			t.Errorf("versionLess(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestKernel(t *testing.T) {
	mk := func(t *testing.T, files ...string) string {
		root := t.TempDir()
		for _, f := range files {
			p := filepath.Join(root, f)
			if strings.HasSuffix(f, "/") {
				os.MkdirAll(p, 0o755)
				continue
			}
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte("6.1.0-3-amd64\n"), 0o644)
		}
		return root
	}
	tests := []struct {
		name  string
		files []string
		want  string // version; "" = error
	}{
		{"running", []string{"proc/sys/kernel/osrelease", "boot/vmlinuz-6.1.0-3-amd64", "lib/modules/6.1.0-3-amd64/", "boot/vmlinuz-6.1.0-9-amd64", "lib/modules/6.1.0-9-amd64/"}, "6.1.0-3-amd64"},
		{"newest with modules", []string{"proc/sys/kernel/osrelease", "boot/vmlinuz-6.1.0-9-amd64", "lib/modules/6.1.0-9-amd64/", "boot/vmlinuz-6.1.0-10-amd64", "lib/modules/6.1.0-10-amd64/", "boot/vmlinuz-6.1.0-11-amd64"}, "6.1.0-10-amd64"},
		{"none", []string{"boot/vmlinuz-6.1.0-11-amd64"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := mk(t, tt.files...)
			path, v, err := Kernel(root)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Kernel = %q, want an error", path)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v != tt.want || path != filepath.Join(root, "boot", "vmlinuz-"+tt.want) {
				t.Errorf("Kernel = %q, %q; want version %q", path, v, tt.want)
			}
		})
	}
}

func TestSerialLines(t *testing.T) {
	m := &Machine{VM: VM{Name: "n"}, changed: make(chan struct{}), Proc: &Proc{Name: "n", done: make(chan struct{})}}
	t0 := time.Now()
	m.add(t0, "SeaBIOS\r\nhal")
	m.add(t0, "f line\nREADY\n")
	got := m.Lines()
	want := []string{"SeaBIOS", "half line", "READY"}
	if len(got) != len(want) {
		t.Fatalf("lines = %q, want %q", got, want)
	}
	for i := range want {
		if got[i].Text != want[i] {
			t.Errorf("line %d = %q, want %q", i, got[i].Text, want[i])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, i, err := m.WaitSerial(ctx, "READY", 0)
	if err != nil || l.Text != "READY" || i != 2 {
		t.Fatalf("WaitSerial = %q, %d, %v; want READY, 2", l.Text, i, err)
	}
	// From a mark, an earlier READY does not count; a later one does.
	mark := m.Mark()
	go m.add(time.Now(), "READY again\n")
	l, i, err = m.WaitSerial(ctx, "READY", mark)
	if err != nil || l.Text != "READY again" || i != 3 {
		t.Fatalf("WaitSerial from mark = %q, %d, %v; want READY again, 3", l.Text, i, err)
	}
	short, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if _, _, err := m.WaitSerial(short, "never", 0); err == nil {
		t.Errorf("WaitSerial for a missing marker succeeded")
	}
}

// TestCloseKillsProcesses: Close ends a process that ignores nothing and
// one that ignores SIGTERM, by pid, and removes the namespace.
func TestCloseKillsProcesses(t *testing.T) {
	if err := Check(false); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := New(ctx, Options{Dir: t.TempDir(), Grace: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	polite, err := l.Start("polite", []string{"sleep", "600"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stubborn, err := l.Start("stubborn", []string{"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The process sees the namespace's bridge, not the host's interfaces.
	probe, err := l.Start("probe", []string{"ip", "-o", "addr", "show", "dev", l.Bridge}, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-probe.Done()
	if b, _ := os.ReadFile(probe.Log); !bytes.Contains(b, []byte(DefaultAddr.String())) {
		t.Errorf("ip addr in the namespace = %q, want %s on %s", b, DefaultAddr, l.Bridge)
	}
	deadline := time.Now().Add(10 * time.Second)
	for Tail(stubborn.Log, 1) != "ready" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Proc{polite, stubborn} {
		select {
		case <-p.Done():
		default:
			t.Errorf("%s (pid %d) still running after Close", p.Name, p.Pid())
		}
	}
	if err := exec.Command("ip", "netns", "pids", l.NS).Run(); err == nil {
		t.Errorf("namespace %s still exists", l.NS)
	}
}

// TestForward: a listener on the host reaches a server that listens only
// on the namespace's loopback.
func TestForward(t *testing.T) {
	if err := Check(false); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := New(ctx, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var inner net.Listener
	if err := l.Do(func() (err error) {
		inner, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	go func() {
		for {
			c, err := inner.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write(append([]byte("in the namespace: "), b...))
			}()
		}
	}()
	// The host's loopback is another one.
	if c, err := net.DialTimeout("tcp", inner.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Logf("%s answers on the host too (another listener); the forward is still checked", inner.Addr())
	}
	host, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Forward(fctx, host, inner.Addr().String()) }()
	for i := range 2 {
		c, err := net.Dial("tcp", host.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "hello %d", i)
		c.(*net.TCPConn).CloseWrite()
		b, err := io.ReadAll(c)
		c.Close()
		if want := fmt.Sprintf("in the namespace: hello %d", i); string(b) != want || err != nil {
			t.Errorf("through the forward: got %q, %v; want %q", b, err, want)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Forward: %v", err)
	}
}

// TestConfig: the lab's config has as many nodes as machines (bpstat
// lists no node no machine can be) and parses without a diagnostic.
func TestConfig(t *testing.T) {
	text := Config(3, []string{MAC(0).String(), MAC(1).String()}, "node 2 "+MAC(100).String())
	c, err := config.Parse("lab", []byte(text), config.Options{})
	if err != nil {
		t.Fatalf("%v in:\n%s", err, text)
	}
	if got := c.NodeCount(); got != 3 {
		t.Errorf("NodeCount = %d, want 3, in:\n%s", got, text)
	}
	if d := c.Diags(); len(d) != 0 {
		t.Errorf("diagnostics %v in:\n%s", d, text)
	}
	if spec, ok := c.Node(1); !ok || len(spec.MACs) != 1 || spec.MACs[0].String() != MAC(1).String() {
		t.Errorf("node 1 = %+v, %v; want MAC %s", spec, ok, MAC(1))
	}
	if !strings.HasSuffix(text, "node 2 "+MAC(100).String()+"\n") {
		t.Errorf("extra not at the end:\n%s", text)
	}
}

// fakeQEMU puts a qemu-system-x86_64 on PATH that runs script (sh) with
// the serial file QEMU was given in $serial, and returns a function that
// counts its runs.
func fakeQEMU(t *testing.T, script string) (runs func() int) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "runs")
	body := "#!/bin/sh\necho run >> " + log + "\nserial=\nfor a; do case $a in file:*) serial=${a#file:};; esac; done\n" + script + "\n"
	if err := os.WriteFile(filepath.Join(dir, QEMU), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
	return func() int {
		b, _ := os.ReadFile(log)
		return strings.Count(string(b), "run\n")
	}
}

// TestProbeAccel: the verdict, and that a remembered one costs no probe.
func TestProbeAccel(t *testing.T) {
	t.Setenv(AccelEnv, "")
	if err := kvmUsable("/dev/kvm"); err != nil {
		if accel, why := ProbeAccel(context.Background(), "/k", t.TempDir(), "", time.Second); accel != "tcg" || why != err.Error() {
			t.Errorf("without a usable /dev/kvm: %s (%s), want tcg (%s)", accel, why, err)
		}
		t.Skipf("the rest needs a usable /dev/kvm: %v", err)
	}
	if err := kvmUsable(filepath.Join(t.TempDir(), "kvm")); err == nil || err.Error() != "no usable /dev/kvm" {
		t.Errorf("kvmUsable of a missing device: %v", err)
	}
	ctx := context.Background()
	for _, tt := range []struct {
		name, script string
		want, why    string
	}{
		{"boots", `echo "Kernel panic - not syncing" > "$serial"; exec sleep 5`, "kvm", "a test guest booted under KVM in"},
		{"hangs", `exec sleep 5`, "tcg", "a test guest did not boot under KVM within 300ms, as happens under nested virtualisation"},
		{"fails", `exit 1`, "tcg", "a test guest under KVM ended (exit status 1) before booting"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kernel := filepath.Join(t.TempDir(), "vmlinuz")
			os.WriteFile(kernel, []byte("kernel"), 0o644)
			runs := fakeQEMU(t, tt.script)
			cache := filepath.Join(t.TempDir(), "cache", "kvm-probe")
			accel, why := ProbeAccel(ctx, kernel, t.TempDir(), cache, 300*time.Millisecond)
			if accel != tt.want || !strings.HasPrefix(why, tt.why) || !strings.HasSuffix(why, "; remembered in "+cache) || runs() != 1 {
				t.Fatalf("probe: %s (%s), %d runs; want %s (%s…; remembered in %s), 1 run", accel, why, runs(), tt.want, tt.why, cache)
			}
			// Remembered: no probe, under a second.
			start := time.Now()
			again, why := ProbeAccel(ctx, kernel, t.TempDir(), cache, 300*time.Millisecond)
			if again != accel || runs() != 1 || !strings.Contains(why, "; probed "+time.Now().Format("2006-01-02")+", remembered in "+cache) {
				t.Errorf("second probe: %s (%s), %d runs; want %s remembered, no run", again, why, runs(), accel)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("remembered verdict took %v", d)
			}
			// Another guest kernel: probed again.
			os.WriteFile(kernel, []byte("another kernel"), 0o644)
			if ProbeAccel(ctx, kernel, t.TempDir(), cache, 300*time.Millisecond); runs() != 2 {
				t.Errorf("after the guest kernel changed: %d runs, want a new probe", runs())
			}
		})
	}
	t.Setenv(AccelEnv, "kvm")
	if accel, why := ProbeAccel(ctx, "/k", t.TempDir(), "", time.Second); accel != "kvm" || why != "$"+AccelEnv {
		t.Errorf("with $%s=kvm: %s (%s)", AccelEnv, accel, why)
	}
}

func TestDefaultFstab(t *testing.T) {
	dir := t.TempDir()
	text, why, err := DefaultFstab(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, lerr := exec.LookPath("ganesha.nfsd"); lerr != nil {
		if text != "" || !strings.Contains(why, "nfs-ganesha") {
			t.Errorf("without ganesha: %q, %q; want no fstab and why", text, why)
		}
		return
	}
	home := HomeDir(dir)
	if !strings.Contains(text, "$MASTER:"+home+" /home nfs4 rw,nonfatal\n") {
		t.Errorf("fstab %q lacks the home line", text)
	}
	if tab, err := fstab.Parse("fstab", []byte(text)); err != nil || len(tab.Entries) != 1 || tab.Entries[0].Fatal() {
		t.Errorf("fstab.Parse: %v (%+v): want one nonfatal line", err, tab)
	}
	fi, err := os.Stat(home)
	if err != nil || fi.Mode().Perm() != 0o777 || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("%s: %v %v, want a 1777 directory", home, fi.Mode(), err)
	}
	if env := strings.Join(UserEnv(dir), " "); !strings.Contains(env, HomeEnv+"="+home) {
		t.Errorf("UserEnv = %s, want %s", env, HomeEnv)
	}
}
