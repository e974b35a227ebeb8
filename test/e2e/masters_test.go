package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/lab"
	"github.com/beo-cluster/beo/test/netns"
)

// TestMultiMaster is SPEC §8 on a real node: two `beo master`s on one
// cluster network (the lab's, and a peer host at 10.99.0.2) share the
// config, whose masterorder makes A (10.99.0.1) the node's primary and B
// its secondary. The node PXE-boots from A (B's boot server stays
// silent while A is up), is up on A and [up] on B, which can neither
// run nor control it. A stops: two ping intervals later the node
// reboots and B, finding A down, answers its boot — a cold re-parenting
// to B, whose NFS server now gives it /home. A back sees it [up];
// `bpctl -R` on B sends it home to A.
func TestMultiMaster(t *testing.T) {
	if err := lab.Check(true); err != nil {
		t.Skip(err)
	}
	kernel, _, err := lab.Kernel("/")
	if err != nil {
		t.Skip(err)
	}
	exe := netns.Beo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	accel, _ := pxeAccel()
	const a, b = "10.99.0.1", "10.99.0.2"
	dir := t.TempDir()
	// Every master serves the lab's home directory as the node's /home:
	// the node mounts it from the master that booted it.
	fstab, noNFS, err := lab.DefaultFstab(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := lab.StartCluster(ctx, lab.ClusterOptions{Exe: exe, Dir: dir, Listed: 1, Kernel: kernel, Boot: true,
		Accel: accel, Log: pxeLogger(t), Fstab: fstab, Config: "pingtimeout 10\nmasterorder - " + a + " " + b + "\n"})
	if err != nil {
		t.Fatal(err)
	}
	var masterB *lab.Proc
	defer func() {
		if t.Failed() {
			pxeKeep(t, c)
			if masterB != nil {
				t.Logf("master B log (%s), last lines:\n%s", masterB.Log, lab.Tail(masterB.Log, 60))
			}
			t.Logf("master B's node.0:\n%s", lab.Tail(filepath.Join(c.Dir, "master-b", "log", "node.0"), 40))
		}
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	peer, err := c.Lab.Peer(ctx, "b", netip.MustParsePrefix(b+"/24"))
	if err != nil {
		t.Fatal(err)
	}
	masterB, sockB, err := c.StartMaster(ctx, peer, "master-b")
	if err != nil {
		t.Fatal(err)
	}
	sockA := c.Socket
	boot := time.Now()
	waitState(t, ctx, sockA, "up", 4*time.Minute)
	waitState(t, ctx, sockB, "[up]", time.Minute)
	t.Logf("node 0 up on A and [up] on B %v after the masters started", time.Since(boot).Round(100*time.Millisecond))

	cmdline := pxeRun(t, ctx, exe, sockA, "bpsh", "0", "cat", "/proc/cmdline")
	for _, want := range []string{"beo.master=" + a, "beo.masters=" + a + "," + b} {
		if !strings.Contains(cmdline, want) {
			t.Errorf("node 0's command line %q lacks %q", cmdline, want)
		}
	}
	if out, err := pxeOutput(ctx, nil, exe, sockB, "bpsh", "0", "true"); err == nil || !strings.Contains(err.Error(), "controlled by another master") {
		t.Errorf("bpsh 0 on B: %q, %v; want refused, controlled by another master", out, err)
	}
	if out, err := pxeOutput(ctx, nil, exe, sockB, "bpctl", "-S", "0", "-R"); err == nil {
		t.Errorf("bpctl -S 0 -R on B while A is its primary: %q, want refused", out)
	}
	if log, _ := os.ReadFile(filepath.Join(c.Dir, "master-b", "log", "node.0")); !strings.Contains(string(log), "not answered: master "+a+", before this one in its masterorder, is up") {
		t.Errorf("B's node.0 does not say it left the node's boot to A:\n%s", log)
	}
	// The node reports its stats to B too: B's beostat shows it.
	if err := pxePoll(ctx, time.Minute, func() error {
		out, err := peer.Output(ctx, exe, "beostat", "-url", dashboard.DefaultURL)
		if err != nil {
			return err
		}
		if !strings.Contains(out, "Node 0 ([up]) ") || !strings.Contains(out, "\n  load ") {
			return fmt.Errorf("B's beostat:\n%s", out)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}

	// A goes away: the node re-parents to B.
	since := time.Now()
	c.Master.Stop(30 * time.Second)
	waitState(t, ctx, sockB, "up", 5*time.Minute)
	t.Logf("node 0 up on B %v after A stopped", time.Since(since).Round(100*time.Millisecond))
	if got := pxeRun(t, ctx, exe, sockB, "bpsh", "0", "cat", "/proc/cmdline"); !strings.Contains(got, "beo.master="+b) {
		t.Errorf("after re-parenting, node 0 booted with %q; want beo.master=%s", got, b)
	}
	if noNFS != "" {
		t.Logf("no NFS check: %s", noNFS)
	} else {
		// A job of B's writes /home on the node: NFS from B.
		pxeRun(t, ctx, exe, sockB, "bpsh", "0", "sh", "-c", "echo from B > /home/via-b")
		if got, err := os.ReadFile(filepath.Join(lab.HomeDir(dir), "via-b")); err != nil || string(got) != "from B\n" {
			t.Errorf("a file node 0 wrote to /home under B: %q, %v", got, err)
		}
		if m := pxeRun(t, ctx, exe, sockB, "bpsh", "0", "grep", " /home ", "/proc/mounts"); !strings.HasPrefix(m, b+":") {
			t.Errorf("node 0's /home under B: %q, want it mounted from %s", m, b)
		}
	}

	// A back: the node is [up] there, B keeps it.
	m, err := c.Lab.Start("master", append([]string{exe, "master"}, c.MasterArgs()...), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Master = m
	waitState(t, ctx, sockA, "[up]", 2*time.Minute)
	pxeRun(t, ctx, exe, sockB, "bpsh", "0", "true")

	// bpctl -R on B: the node reboots, and its first master takes it.
	since = time.Now()
	pxeRun(t, ctx, exe, sockB, "bpctl", "-S", "0", "-R")
	waitState(t, ctx, sockA, "up", 5*time.Minute)
	waitState(t, ctx, sockB, "[up]", time.Minute)
	t.Logf("node 0 back on A %v after bpctl -R on B", time.Since(since).Round(100*time.Millisecond))
	if got := pxeRun(t, ctx, exe, sockA, "bpsh", "0", "cat", "/proc/cmdline"); !strings.Contains(got, "beo.master="+a) {
		t.Errorf("back on A, node 0 booted with %q; want beo.master=%s", got, a)
	}
	if noNFS == "" {
		if m := pxeRun(t, ctx, exe, sockA, "bpsh", "0", "grep", " /home ", "/proc/mounts"); !strings.HasPrefix(m, a+":") {
			t.Errorf("node 0's /home back on A: %q, want it mounted from %s", m, a)
		}
	}
}

// waitState waits until the master at socket shows node 0 in state want.
func waitState(t *testing.T, ctx context.Context, socket, want string, d time.Duration) {
	t.Helper()
	last := "unknown"
	if err := pxePoll(ctx, d, func() error {
		cl, err := bproc.Dial(ctx, socket)
		if err != nil {
			return err
		}
		defer cl.Close()
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		if len(st.Nodes) == 0 {
			return errors.New("no nodes")
		}
		if last = st.Nodes[0].State; last != want {
			return fmt.Errorf("node 0 %s", last)
		}
		return nil
	}); err != nil {
		t.Fatalf("master at %s: node 0 never %s (last %s): %v", socket, want, last, err)
	}
}
