package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/lab"
)

// pxeBootWait bounds one boot to up: generous, the two host cores are
// shared (TESTING.md measures ~12 s for 3 VMs under TCG when idle).
const pxeBootWait = 4 * time.Minute

// pxeBinary returns the beo binary under test: $BEO_BIN (set by
// `make test-root`), else one built here.
func pxeBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("BEO_BIN"); b != "" {
		return b
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	out := filepath.Join(t.TempDir(), "beo")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("BEO_BIN unset and go build failed: %v\n%s", err, b)
	}
	return out
}

// pxeRequire fails (not skips) when the binary lacks an applet the PXE
// boot needs: a missing piece of beo is a failure of beo.
func pxeRequire(t *testing.T, exe string, applets ...string) {
	t.Helper()
	out, err := exec.Command(exe).Output()
	if err != nil {
		t.Fatalf("%s: %v", exe, err)
	}
	for _, a := range applets {
		if !bytes.Contains(out, []byte("\n  "+a+" ")) {
			t.Fatalf("%s has no %q applet: the PXE boot cannot work without it", exe, a)
		}
	}
}

// pxeRun runs the beo binary with BEO_SOCKET set and returns stdout.
func pxeRun(t *testing.T, ctx context.Context, exe, socket string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), bproc.SocketEnv+"="+socket)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("beo %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestPXE is the proof of issue 4: QEMU machines PXE-boot from `beo
// master` through QEMU's iPXE ROM and become usable nodes.
func TestPXE(t *testing.T) {
	if err := lab.Check(true); err != nil {
		t.Skip(err)
	}
	kernel, release, err := lab.Kernel("/")
	if err != nil {
		t.Skip(err)
	}
	exe := pxeBinary(t)
	pxeRequire(t, exe, "master", "beoboot", "bpsh", "bpcp", "bpctl", "bpstat")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir := t.TempDir()
	start := time.Now()
	accel, why := pxeAccel()
	t.Logf("accelerator %s (%s)", accel, why)
	c, err := lab.StartCluster(ctx, lab.ClusterOptions{Exe: exe, Dir: dir, Listed: 2, Unlisted: 1, Kernel: kernel, Boot: true,
		Accel: accel, Log: pxeLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			pxeKeep(t, c)
		}
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	t.Logf("namespace %s", c.Lab.NS)

	// Both listed machines and the unlisted one reach up.
	wctx, wcancel := context.WithTimeout(ctx, pxeBootWait)
	err = c.WaitUp(wctx, 0, 1, 2)
	wcancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("3 nodes up %v after start", time.Since(start).Round(100*time.Millisecond))
	for _, m := range c.Machines {
		t.Logf("%s timeline:\n%s", m.VM.Name, lab.FormatTimeline(c.Timeline(m)))
	}

	t.Run("unlisted MAC auto-added", func(t *testing.T) {
		f, err := config.Open(c.Config, config.Options{})
		if err != nil {
			t.Fatal(err)
		}
		mac, err := config.ParseMAC(lab.MAC(100).String())
		if err != nil {
			t.Fatal(err)
		}
		got := f.Config().Lookup(mac)
		if got.Kind != config.KindNode || got.Node != 2 {
			t.Errorf("config lookup of %s = %+v, want node 2 (nodeassign append)\nconfig:\n%s", mac, got, f.Bytes())
		}
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range st.Nodes {
			if n.Node == 2 && !slices.Contains(n.MACs, mac.String()) {
				t.Errorf("node 2 MACs = %v, want %s", n.MACs, mac)
			}
		}
	})

	t.Run("bpsh -a uname -r", func(t *testing.T) {
		out := pxeRun(t, ctx, exe, c.Socket, "bpsh", "-a", "uname", "-r")
		got := strings.Fields(out)
		if len(got) != 3 {
			t.Fatalf("bpsh -a uname -r printed %q, want 3 lines of %s", out, release)
		}
		for _, g := range got {
			if g != release {
				t.Errorf("bpsh -a uname -r line %q, want %q", g, release)
			}
		}
	})

	t.Run("bpcp round trip", func(t *testing.T) {
		data := make([]byte, 1<<20+17)
		rand.Read(data)
		local := filepath.Join(dir, "payload")
		back := filepath.Join(dir, "payload.back")
		if err := os.WriteFile(local, data, 0o644); err != nil {
			t.Fatal(err)
		}
		pxeRun(t, ctx, exe, c.Socket, "bpcp", local, "1:/tmp/payload")
		pxeRun(t, ctx, exe, c.Socket, "bpcp", "1:/tmp/payload", back)
		got, err := os.ReadFile(back)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("bpcp round trip: got %d bytes, want the %d sent (equal: false)", len(got), len(data))
		}
	})

	t.Run("bpctl -R reboots and the node comes back", func(t *testing.T) {
		m := c.Machines[1]
		mark := m.Mark()
		since := time.Now()
		pxeRun(t, ctx, exe, c.Socket, "bpctl", "-S", "1", "-R")
		// The machine really reboots: its kernel starts again.
		rctx, rcancel := context.WithTimeout(ctx, pxeBootWait)
		defer rcancel()
		if _, _, err := m.WaitSerial(rctx, "Linux version", mark); err != nil {
			t.Fatalf("node 1 did not boot again after bpctl -R: %v", err)
		}
		if !pxeLeftUp(c.Events(), 1, since) {
			t.Errorf("node 1 never left up after bpctl -R; events %v", c.Events())
		}
		if err := c.WaitUp(rctx, 1); err != nil {
			t.Fatal(err)
		}
		t.Logf("node 1 up again %v after bpctl -R", time.Since(since).Round(100*time.Millisecond))
		out := pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "uname", "-r")
		if got := strings.TrimSpace(out); got != release {
			t.Errorf("after reboot bpsh 1 uname -r = %q, want %q", got, release)
		}
	})
}

// pxeLeftUp reports whether node n was seen in a state other than up
// after since.
func pxeLeftUp(ev []lab.Event, n int, since time.Time) bool {
	for _, e := range ev {
		if e.Node == n && e.T.After(since) && e.State != "up" {
			return true
		}
	}
	return false
}

// pxeKeep copies the lab's logs next to the test's output when it failed,
// so CI shows why: serial consoles and the master log.
func pxeKeep(t *testing.T, c *lab.Cluster) {
	for _, m := range c.Machines {
		t.Logf("%s serial (%s), last lines:\n%s", m.VM.Name, m.Serial, m.SerialTail(40))
	}
	if c.Master != nil {
		t.Logf("master log (%s), last lines:\n%s", c.Master.Log, lab.Tail(c.Master.Log, 60))
	}
	ls, _ := filepath.Glob(filepath.Join(c.LogDir, "node.*"))
	for _, l := range ls {
		t.Logf("%s:\n%s", l, lab.Tail(l, 30))
	}
}

// pxeLogger sends the lab's log lines to t.Log (the lab logs only from
// the calls the test makes, never after it returns).
func pxeLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(pxeWriter{t}, nil))
}

type pxeWriter struct{ t *testing.T }

func (w pxeWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// pxeAccel probes the accelerator once per test binary (it costs 10 s
// when KVM hangs).
var pxeAccel = sync.OnceValues(func() (string, string) {
	k, _, err := lab.Kernel("/")
	if err != nil {
		return "tcg", err.Error()
	}
	return lab.ProbeAccel(context.Background(), k, os.TempDir(), 10*time.Second)
})
