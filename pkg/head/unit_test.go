package head

import (
	"context"
	_ "embed"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"time"

	"github.com/beo-cluster/beo/pkg/config"
)

//go:embed beo-master.service
var unitFile string

// TestUnitVerifies runs systemd-analyze verify on the shipped unit, with
// ExecStart pointing at a binary that exists here.
func TestUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze (Debian package systemd)")
	}
	self, _ := os.Executable()
	unit := strings.ReplaceAll(unitFile, "/usr/local/sbin/beo", self)
	path := filepath.Join(t.TempDir(), "beo-master.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "beo-master.service") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"Type=notify", "ExecReload=/usr/local/sbin/beo master reload", "ExecStart=/usr/local/sbin/beo master\n"} {
		if !strings.Contains(unitFile, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
}

// TestNotify: Run tells systemd it is ready, reloading around a SIGHUP
// (with the monotonic time notify-reload wants), and stopping.
func TestNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	pc, err := net.ListenPacket("unixgram", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	cfg := writeConfig(t, goodConfig)
	r, _, err := Load(cfg, configOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan int, 1)
	r.Follow(func(c *config.Config) { reloaded <- c.NodeCount() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, nil, r, Unit{"idle", func(ctx context.Context) error { <-ctx.Done(); return nil }})
	}()
	read := func() string {
		t.Helper()
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 512)
		n, _, err := pc.ReadFrom(b)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(b[:n])
	}
	if got := read(); got != "READY=1" {
		t.Fatalf("first: got %q, want READY=1", got)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	if got := read(); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("on SIGHUP: got %q, want RELOADING=1 and MONOTONIC_USEC", got)
	}
	select {
	case n := <-reloaded:
		if n != 4 {
			t.Errorf("reloaded config has %d nodes, want 4", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SIGHUP did not reload")
	}
	if got := read(); got != "READY=1" {
		t.Errorf("after the reload: got %q, want READY=1", got)
	}
	cancel()
	if got := read(); got != "STOPPING=1" {
		t.Errorf("at the end: got %q, want STOPPING=1", got)
	}
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
