package cluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/sim"
	"github.com/beo-cluster/beo/test/testio"
)

// rogue starts a bpslave claiming node n from n's address, holding
// everything a boot image holds (the master's public key) and a key of
// its own; its log is returned.
func rogue(ctx context.Context, t *testing.T, c *sim.Cluster, n int) (*exec.Cmd, *testio.Buffer) {
	t.Helper()
	root := t.TempDir()
	keys := filepath.Join(root, "etc", "beowulf", "keys")
	os.MkdirAll(keys, 0o700)
	pub, err := os.ReadFile(filepath.Join(c.Dir, "keys", link.MasterPubFile))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(keys, link.MasterPubFile), pub, 0o644)
	cmd := exec.CommandContext(ctx, beoBin, "bpslave", "-sim", "-m", c.Master, "-n", "3",
		"-src", sim.NodeAddr(n).String(), "-keys", keys, "-root", root)
	log := &testio.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, log
}

// TestRogueNode: a host with the boot image's contents and node 3's
// address is refused, node 3's session is not disturbed, and a node
// whose key changed re-enrolls only after its pin is forgotten.
func TestRogueNode(t *testing.T) {
	c := start(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	job, out, _ := startJob(ctx, t, c, 1, "3", "sh", "-c", "echo ready; i=0; while [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done; echo done")
	slave := c.Slave(3)
	began := time.Now()
	_, log := rogue(ctx, t, c, 3)
	for !strings.Contains(log.String(), "master refused this node") {
		if ctx.Err() != nil {
			t.Fatalf("the rogue was not refused; its log:\n%s", log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("rogue refused after %v", time.Since(began).Round(time.Millisecond))
	if !strings.Contains(log.String(), "connected with its pinned key") {
		t.Errorf("refusal does not say why: %s", log.String())
	}
	time.Sleep(300 * time.Millisecond) // a few retries of the rogue
	if err := job.Wait(); err != nil || !strings.Contains(out.String(), "done") {
		t.Errorf("node 3's job while a rogue claimed it: %v, %q", err, out.String())
	}
	if got := c.Slave(3); got != slave {
		t.Errorf("node 3's bpslave changed: %d → %d", slave, got)
	}
	if r := run(t, c, nil, "bpsh", "3", "echo", "still"); r.out != "still\n" {
		t.Errorf("node 3 after the rogue: %+v", r)
	}
	nodeLog, _ := os.ReadFile(filepath.Join(c.Dir, "log", "node.3"))
	if n := strings.Count(string(nodeLog), "refused"); n != 1 {
		t.Errorf("node.3 has %d refusal lines, want 1 (throttled):\n%s", n, nodeLog)
	}
}

// TestForgetKey: a node that lost its key (a replaced board) is refused
// until root forgets its pin; then it enrolls anew and comes up.
func TestForgetKey(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("bpctl changes need root")
	}
	c := start(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key := filepath.Join(c.Dir, "nodes", "1", "etc", "beowulf", "keys", link.NodeKeyFile)
	if _, err := os.Stat(key); err != nil {
		t.Fatalf("node 1 has no key of its own: %v", err)
	}
	os.Remove(key)
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	logf := filepath.Join(c.Dir, "log", "node.1")
	for {
		b, _ := os.ReadFile(logf)
		if strings.Contains(string(b), "has not network-booted") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("node 1 with a new key was not refused:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := run(t, c, nil, "bpstat", "1"); !strings.Contains(r.out, "down") {
		t.Errorf("node 1 with a new key: %+v, want down", r)
	}
	if r := run(t, c, nil, "bpctl", "-S", "1", "--forget-key"); r.code != 0 {
		t.Fatalf("bpctl --forget-key: %+v", r)
	}
	if err := c.WaitUp(ctx, 2); err != nil {
		b, _ := os.ReadFile(logf)
		t.Fatalf("node 1 did not re-enroll: %v\n%s", err, b)
	}
	if r := run(t, c, nil, "bpsh", "1", "echo", "back"); r.out != "back\n" {
		t.Errorf("node 1 after re-enrolling: %+v", r)
	}
	openUp(t, c)
	nobodyCtl := runAs(t, c, nobody, nil, "bpctl", "-S", "0", "--forget-key")
	if nobodyCtl.code == 0 {
		t.Errorf("a non-root bpctl --forget-key succeeded: %+v", nobodyCtl)
	}
}
