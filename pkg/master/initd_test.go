package master

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/test/testio"
)

func writeFile(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
}

func TestInitScripts(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "20b"), "#!/bin/sh\n", 0o755)
	writeFile(t, filepath.Join(dir, "10a"), "#!/bin/sh\n", 0o700)
	writeFile(t, filepath.Join(dir, ".hidden"), "#!/bin/sh\n", 0o755)
	writeFile(t, filepath.Join(dir, "README"), "not a script\n", 0o644)
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("20b", filepath.Join(dir, "30link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("missing", filepath.Join(dir, "40dangling")); err != nil {
		t.Fatal(err)
	}
	scripts, skipped, err := initScripts(dir)
	if err != nil {
		t.Fatal(err)
	}
	in := func(names ...string) []string {
		var p []string
		for _, n := range names {
			p = append(p, filepath.Join(dir, n))
		}
		return p
	}
	if want := in("10a", "20b", "30link"); !reflect.DeepEqual(scripts, want) {
		t.Errorf("scripts: got %q, want %q", scripts, want)
	}
	if want := in("40dangling", "README", "sub"); !reflect.DeepEqual(skipped, want) {
		t.Errorf("skipped: got %q, want %q", skipped, want)
	}
	if s, k, err := initScripts(filepath.Join(dir, "none")); s != nil || k != nil || err != nil {
		t.Errorf("missing dir: got %q %q %v, want nothing", s, k, err)
	}
}

// initdMaster is a Master with just what runInitD uses.
func initdMaster(t *testing.T, logDir string) (*Master, *testio.Buffer) {
	logs := &testio.Buffer{}
	m := &Master{log: slog.New(slog.NewTextHandler(logs, nil)), clock: time.Now, cfg: Config{LogDir: logDir}}
	return m, logs
}

func TestRunInitD(t *testing.T) {
	dir, logDir := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(dir, "10first"), "#!/bin/sh\necho \"first $1 $NODE $BEO_NODE_ADDR\"\n", 0o755)
	writeFile(t, filepath.Join(dir, "20fail"), "#!/bin/sh\necho oops >&2\nexit 3\n", 0o755)
	writeFile(t, filepath.Join(dir, "30never"), "#!/bin/sh\necho never ran\n", 0o755)
	writeFile(t, filepath.Join(dir, "README"), "#!/bin/sh\necho not executable\n", 0o644)
	m, logs := initdMaster(t, logDir)
	s := &session{node: 3, addr: netip.MustParseAddr("10.99.0.103")}
	cfg := Config{InitD: dir, LogDir: logDir}
	for range 2 {
		err := m.runInitD(context.Background(), cfg, s)
		if err == nil || err.Error() != "20fail failed: exit status 3" {
			t.Errorf("got %v, want 20fail failed: exit status 3", err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(logDir, "node.3"))
	log := string(b)
	for _, want := range []string{"running " + filepath.Join(dir, "10first") + " 3", "first 3 3 10.99.0.103", "oops"} {
		if !strings.Contains(log, want) {
			t.Errorf("node.3 lacks %q:\n%s", want, log)
		}
	}
	for _, never := range []string{"never ran", "not executable"} {
		if strings.Contains(log, never) {
			t.Errorf("node.3 holds %q:\n%s", never, log)
		}
	}
	if n := strings.Count(logs.String(), "README"); n != 1 {
		t.Errorf("README skipped: logged %d times, want once:\n%s", n, logs)
	}

	if err := m.runInitD(context.Background(), Config{InitD: filepath.Join(dir, "none")}, s); err != nil {
		t.Errorf("no init.d directory: got %v, want nothing to run", err)
	}
	if err := m.runInitD(context.Background(), Config{}, s); err != nil {
		t.Errorf("no InitD: got %v", err)
	}
}

// TestRunInitDTimeout: a script still running after the timeout is
// killed with what it started.
func TestRunInitDTimeout(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	writeFile(t, filepath.Join(dir, "10hang"), "#!/bin/sh\nsleep 60 &\necho $! > "+pidFile+"\nwait\n", 0o755)
	m, _ := initdMaster(t, "")
	s := &session{node: 1, addr: netip.MustParseAddr("10.99.0.101")}
	start := time.Now()
	err := m.runInitD(context.Background(), Config{InitD: dir, InitDTimeout: 300 * time.Millisecond}, s)
	if err == nil || err.Error() != "10hang failed: still running after 300ms: killed" {
		t.Errorf("got %v, want 10hang killed after 300ms", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		// Gone, or a zombie its new parent has not reaped yet.
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the script's child %d still runs: %s", pid, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
