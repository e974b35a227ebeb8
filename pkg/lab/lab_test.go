package lab

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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
