package cluster

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/sim"
)

// TestMultipleMasters runs two masters over the same two nodes
// (masterorder - A B): each node is up on A, its primary, and [up] on B,
// which can neither run nor control it; B going away leaves A's jobs
// alone; when A goes away the nodes re-parent to B (a simulated reboot)
// and run B's jobs; A back shows them [up]; bpctl -R on B sends a node
// back to A.
func TestMultipleMasters(t *testing.T) {
	c := startWith(t, sim.Options{Nodes: 2, Masters: 2, PingTimeout: 4 * time.Second}, 2)
	a, b := c.MasterSocket(0), c.MasterSocket(1)
	waitStates(t, a, "up", "up")
	waitStates(t, b, "[up]", "[up]")
	if r := on(t, a, "bpstat"); !strings.Contains(r.out, "0-1") || !strings.Contains(r.out, " up ") {
		t.Errorf("bpstat on A:\n%s", r.out)
	}
	if r := on(t, b, "bpstat"); !strings.Contains(r.out, "[up]") {
		t.Errorf("bpstat on B:\n%s", r.out)
	}
	if r := on(t, a, "bpsh", "0", "echo", "from A"); r.code != 0 || r.out != "from A\n" {
		t.Errorf("bpsh 0 on A: %+v", r)
	}
	// B may neither run nor control a node whose primary is A: the
	// node is refused before anything reaches it.
	if r := on(t, b, "bpsh", "0", "echo", "from B"); r.code == 0 || !strings.Contains(r.err, "controlled by another master") {
		t.Errorf("bpsh 0 on B: %+v; want refused, controlled by another master", r)
	}
	for _, args := range [][]string{
		{"-S", "1", "-s", "unavailable"}, {"-S", "1", "-m", "0100"}, {"-S", "1", "-u", "0"},
		{"-S", "1", "--forget-key"}, {"-S", "1", "--reconnect"}, {"-S", "0-1", "-g", "0"},
	} {
		if r := on(t, b, "bpctl", args...); r.code == 0 || !strings.Contains(r.err, "controlled by another master") {
			t.Errorf("bpctl %v on B: %+v; want refused", args, r)
		}
	}
	if r := on(t, b, "beomap", "--np", "2"); r.code == 0 {
		t.Errorf("beomap on B placed ranks on A's nodes: %+v", r)
	}

	// B going away leaves A's jobs alone; B back sees the nodes again.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	job := exec.CommandContext(ctx, "bpsh", "0", "sh", "-c", "sleep 2; echo done")
	job.Env = append(os.Environ(), bproc.SocketEnv+"="+a)
	var jobOut bytes.Buffer
	job.Stdout = &jobOut
	if err := job.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := c.StopMaster(1); err != nil {
		t.Fatal(err)
	}
	if err := job.Wait(); err != nil || jobOut.String() != "done\n" {
		t.Errorf("a job on A while B stopped: %q, %v; want it to finish", jobOut.String(), err)
	}
	if err := c.StartMaster(1); err != nil {
		t.Fatal(err)
	}
	waitStates(t, b, "[up]", "[up]")
	waitStates(t, a, "up", "up")

	// A goes away: two ping intervals later each node reboots into B.
	if err := c.StopMaster(0); err != nil {
		t.Fatal(err)
	}
	waitStates(t, b, "up", "up")
	if r := on(t, b, "bpsh", "-a", "-p", "-s", "echo", "from B"); r.code != 0 || r.out != "  0: from B\n  1: from B\n" {
		t.Errorf("bpsh -a on B after A stopped: %+v", r)
	}
	// A back: it sees them, [up]; B keeps them.
	if err := c.StartMaster(0); err != nil {
		t.Fatal(err)
	}
	waitStates(t, a, "[up]", "[up]")
	if r := on(t, b, "bpsh", "1", "true"); r.code != 0 {
		t.Errorf("bpsh 1 on B with A back: %+v", r)
	}
	// bpctl -R on B: node 0 reboots and its first master, A, takes it.
	if r := on(t, b, "bpctl", "-S", "0", "-R"); r.code != 0 {
		t.Fatalf("bpctl -S 0 -R on B: %+v", r)
	}
	waitStates(t, a, "up", "[up]")
	waitStates(t, b, "[up]", "up")
	if r := on(t, a, "bpsh", "0", "echo", "back on A"); r.code != 0 || r.out != "back on A\n" {
		t.Errorf("bpsh 0 on A after the reboot: %+v", r)
	}
}

// on runs a client command against the master whose socket is sock.
func on(t *testing.T, sock, name string, args ...string) result {
	t.Helper()
	env := append(os.Environ(), bproc.SocketEnv+"="+sock)
	return runUser(t, nil, "/", env, 30*time.Second, append([]string{name}, args...)...)
}

// waitStates waits until the master at sock shows node i in want[i].
func waitStates(t *testing.T, sock string, want ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	for {
		got = got[:0]
		if cl, err := bproc.Dial(ctx, sock); err == nil {
			if st, err := cl.Status(ctx); err == nil {
				for _, n := range st.Nodes {
					got = append(got, n.State)
				}
			}
			cl.Close()
		}
		if strings.Join(got, " ") == strings.Join(want, " ") {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("master at %s: nodes %q, want %q", sock, got, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestThreeMasters: a node re-parents down its masterorder one master at
// a time — A gone, B takes it; B gone, C — and keeps its last primary
// when the others come back.
func TestThreeMasters(t *testing.T) {
	c := startWith(t, sim.Options{Nodes: 1, Masters: 3, PingTimeout: 4 * time.Second}, 1)
	a, b, cc := c.MasterSocket(0), c.MasterSocket(1), c.MasterSocket(2)
	waitStates(t, a, "up")
	waitStates(t, b, "[up]")
	waitStates(t, cc, "[up]")
	if err := c.StopMaster(0); err != nil {
		t.Fatal(err)
	}
	waitStates(t, b, "up")
	waitStates(t, cc, "[up]")
	if err := c.StopMaster(1); err != nil {
		t.Fatal(err)
	}
	waitStates(t, cc, "up")
	if r := on(t, cc, "bpsh", "0", "echo", "on C"); r.code != 0 || r.out != "on C\n" {
		t.Errorf("bpsh 0 on C: %+v", r)
	}
	for i := range 2 {
		if err := c.StartMaster(i); err != nil {
			t.Fatal(err)
		}
	}
	waitStates(t, a, "[up]")
	waitStates(t, b, "[up]")
	waitStates(t, cc, "up")
}
