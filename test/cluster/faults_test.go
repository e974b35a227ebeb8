package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/sim"
	"github.com/beo-cluster/beo/test/testio"
)

// TestMasterRestart: a job running when the master restarts ends with 255
// naming its node (nothing hangs, the remote process is hung up), every
// node starts down in the new master and comes back up by itself.
func TestMasterRestart(t *testing.T) {
	c := start(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	job, _, errb := startJob(ctx, t, c, 1, "1", "sh", "-c", "echo ready; exec sleep 30")
	ps, err := client(t, c).Procs(ctx)
	if err != nil || len(ps) != 1 {
		t.Fatalf("procs: %v %v", ps, err)
	}
	if err := c.RestartMaster(); err != nil {
		t.Fatal(err)
	}
	err = job.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 255 || !strings.HasPrefix(errb.String(), "1: ") {
		t.Errorf("bpsh across a master restart: got %v, stderr %q; want 255 and \"1: ...\"", err, errb.String())
	}
	// The new master starts with every node down (or already back).
	st := status(t, c, 0).State
	if st != "down" && st != "boot" && st != "up" {
		t.Errorf("node 0 in the new master: %q", st)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := c.WaitUp(wctx, 3); err != nil {
		t.Fatalf("nodes after the restart: %v", err)
	}
	waitFor(t, "the orphaned remote process hung up", 15*time.Second, func() bool { return procState(ps[0].PID) == "" })
	if r := run(t, c, nil, "bpsh", "-a", "-p", "-s", "echo", "ok"); r.out != "  0: ok\n  1: ok\n  2: ok\n" {
		t.Errorf("after the restart: got %+v", r)
	}
}

// TestHeartbeat: a node that stops answering is down after about two ping
// intervals and comes back once it runs again.
func TestHeartbeat(t *testing.T) {
	c := startWith(t, sim.Options{Nodes: 2, PingTimeout: 2 * time.Second}, 2)
	pid := c.Slave(1)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	defer syscall.Kill(pid, syscall.SIGCONT)
	// A command started meanwhile fails once the node is lost, saying so.
	if r := run(t, c, nil, "bpsh", "1", "true"); r.code != 255 || !strings.Contains(r.err, "1: exec: node lost (no heartbeat") {
		t.Errorf("bpsh to the silent node: got %+v, want it lost for want of a heartbeat", r)
	}
	waitState(t, c, 1, "down", 10*time.Second)
	if d := time.Since(stopped); d < time.Second || d > 6*time.Second {
		t.Errorf("down after %s; want about two 1 s intervals", d)
	}
	if st := status(t, c, 0).State; st != "up" {
		t.Errorf("node 0 meanwhile: %q, want up", st)
	}
	syscall.Kill(pid, syscall.SIGCONT)
	waitState(t, c, 1, "up", 20*time.Second)
}

// TestNodeUp: node_up runs with the node number, its output lands in
// node.N, and its exit status decides up or error.
func TestNodeUp(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "node_up")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"node_up says $1 $NODE\"\n[ \"$1\" = 1 ] && exit 3\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := startWith(t, sim.Options{Nodes: 2, NodeUp: script, Dir: dir}, 1)
	waitState(t, c, 1, "error", 20*time.Second)
	if st := status(t, c, 0).State; st != "up" {
		t.Errorf("node 0: %q, want up", st)
	}
	for n, want := range []string{"node_up says 0 0", "node_up says 1 1"} {
		b, _ := os.ReadFile(filepath.Join(dir, "log", fmt.Sprintf("node.%d", n)))
		if !strings.Contains(string(b), want) {
			t.Errorf("log/node.%d: got %q, want it to contain %q", n, b, want)
		}
	}
	if r := run(t, c, nil, "bpsh", "1", "true"); r.code != 255 || !strings.Contains(r.err, "1: ") {
		if os.Getuid() != 0 {
			t.Errorf("bpsh on an error node: got %+v, want refused", r)
		}
	}
}

// TestReload: SIGHUP re-reads the config; a node added there appears.
func TestReload(t *testing.T) {
	c := start(t, 2)
	cfg := filepath.Join(c.Dir, "config")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	grown := strings.Replace(string(b), "nodes 2", "nodes 3", 1)
	grown = strings.Replace(grown, sim.NodeAddr(1).String()+"\n", sim.NodeAddr(2).String()+"\n", 1)
	if grown == string(b) {
		t.Fatalf("config not as expected:\n%s", b)
	}
	if err := os.WriteFile(cfg, []byte(grown), 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP) // the in-process master catches it
	waitFor(t, "three nodes after SIGHUP", 10*time.Second, func() bool {
		return run(t, c, nil, "bpstat", "-t").out == "3\n"
	})
	if st := status(t, c, 2).State; st != "down" {
		t.Errorf("new node 2: %q, want down (nothing runs it)", st)
	}
	if st := status(t, c, 1).State; st != "up" {
		t.Errorf("node 1 across the reload: %q, want still up", st)
	}
}

// TestGarbageLogged: junk to the node port and the client socket is
// rejected and logged, and the master keeps serving.
func TestGarbageLogged(t *testing.T) {
	var logs testio.Buffer
	c := startWith(t, sim.Options{Nodes: 1, Log: slog.New(slog.NewTextHandler(&logs, nil))}, 1)
	for _, target := range [][2]string{{"tcp", c.Master}, {"unix", c.Socket}} {
		for _, junk := range [][]byte{{0, 0, 0, 50, '{', '"'}, bytes.Repeat([]byte{0xfe}, 100)} {
			d := junkDialer(target[0])
			conn, err := d.Dial(target[0], target[1])
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			conn.Write(junk)
			b := make([]byte, 1)
			conn.Read(b)
			conn.Close()
		}
	}
	waitFor(t, "both refusals logged", 10*time.Second, func() bool {
		l := logs.String()
		return strings.Contains(l, "refused node") && strings.Contains(l, "client")
	})
	if r := run(t, c, nil, "bpsh", "0", "echo", "still serving"); r.out != "still serving\n" {
		t.Errorf("after garbage: got %+v", r)
	}
}
