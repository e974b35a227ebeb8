package cluster

import (
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/sim"
	"github.com/beo-cluster/beo/test/testio"
)

// TestReloadBrokenConfig is issue 10's scenario: SIGHUP with an empty file
// or random bytes used to drop every node. The master now keeps its
// config and logs why; a reload that removes up nodes says which first.
func TestReloadBrokenConfig(t *testing.T) {
	var logs testio.Buffer
	c := startWith(t, sim.Options{Nodes: 3, Log: slog.New(slog.NewTextHandler(&logs, nil))}, 3)
	cfg := filepath.Join(c.Dir, "config")
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 200<<10)
	r := rand.New(rand.NewPCG(10, 3))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	reload := func(data []byte, log string) {
		t.Helper()
		if err := os.WriteFile(cfg, data, 0o644); err != nil {
			t.Fatal(err)
		}
		syscall.Kill(os.Getpid(), syscall.SIGHUP) // the in-process master catches it
		waitFor(t, "log "+log, 10*time.Second, func() bool { return strings.Contains(logs.String(), log) })
	}
	for _, bad := range []struct{ name, data, log string }{
		{"empty", "", "config:1: no directives"},
		{"random bytes", string(random), "not a text file"},
		{"no iprange", "nodes 3\n", "config:1: no iprange line"},
	} {
		reload([]byte(bad.data), bad.log)
		for n := range 3 {
			if st := status(t, c, n).State; st != "up" {
				t.Errorf("after the %s reload: node %d %s, want up", bad.name, n, st)
			}
		}
	}
	if strings.Contains(logs.String(), "config reloaded") {
		t.Errorf("a broken config was applied:\n%s", logs.String())
	}
	shrunk := strings.Replace(string(good), "nodes 3", "nodes 1", 1)
	reload([]byte(shrunk), "config reloaded")
	if want := `msg="reload drops nodes that are up" removing=1-2 readdressing=""`; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, logs.String())
	}
	if got := run(t, c, nil, "bpstat", "-t").out; got != "1\n" {
		t.Errorf("bpstat -t after shrinking: %q, want 1", got)
	}
}

// TestMasterReloadStatus: `beo master reload` reloads the running master
// and prints a broken file's file:line, non-root users are refused, and
// `beo master status` reports the master (exit 3 when none runs).
func TestMasterReloadStatus(t *testing.T) {
	c := start(t, 2)
	cfg := filepath.Join(c.Dir, "config")
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r := run(t, c, nil, beoBin, "master", "status"); r.code != 0 || !strings.Contains(r.out, "bpmaster running: pid") ||
		!strings.Contains(r.out, "config: "+cfg) || !strings.Contains(r.out, "nodes: 2 (2 up)") {
		t.Errorf("status: %+v", r)
	}
	os.WriteFile(cfg, []byte("nodes 2\n\x00junk\n"), 0o644)
	if r := run(t, c, nil, beoBin, "master", "reload"); r.code == 0 || !strings.Contains(r.err, cfg+":2:") {
		t.Errorf("reload of a broken file: %+v, want a non-zero exit naming %s:2", r, cfg)
	}
	os.WriteFile(cfg, []byte(strings.Replace(string(good), "nodes 2", "nodes 1", 1)), 0o644)
	if os.Getuid() == 0 {
		openUp(t, c)
		if r := runAs(t, c, &syscall.Credential{Uid: 1, Gid: 1}, nil, beoBin, "master", "reload"); r.code == 0 {
			t.Errorf("reload by uid 1: %+v, want refused", r)
		}
	}
	if r := run(t, c, nil, beoBin, "master", "reload"); r.code != 0 || r.out != "config reloaded\n" {
		t.Fatalf("reload: %+v", r)
	}
	if r := run(t, c, nil, beoBin, "master", "status"); !strings.Contains(r.out, "nodes: 1 (1 up)") {
		t.Errorf("status after the reload: %+v", r)
	}
	if r := run(t, &sim.Cluster{Socket: filepath.Join(t.TempDir(), "none")}, nil, beoBin, "master", "status"); r.code != 3 ||
		!strings.Contains(r.out, "bpmaster is not running") {
		t.Errorf("status with no master: %+v, want exit 3", r)
	}
	// A bad command line is a usage error, not a master that is down.
	if r := run(t, c, nil, beoBin, "master", "status", "-x"); r.code != 2 || strings.Contains(r.out, "not running") || !strings.Contains(r.err, "usage:") {
		t.Errorf("master status -x: %+v; want a usage error", r)
	}
}
