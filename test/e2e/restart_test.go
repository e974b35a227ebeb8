package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/lab"
)

// pxeMasterRestart restarts `beo master` under TestPXE's running nodes,
// as an admin restarting the head node's service would: the nodes
// reconnect by themselves without rebooting, a job the old master
// started does not outlive it (no orphans), and the nodes' NFS /home
// works again from the new master's NFS server. Last in TestPXE: it
// replaces c.Master.
func pxeMasterRestart(t *testing.T, ctx context.Context, c *lab.Cluster, exe string, nfs pxeNFSSetup) {
	t.Run("the master restarts: nodes reconnect without a reboot, the old jobs end", func(t *testing.T) {
		uptime := func() float64 {
			out := pxeRun(t, ctx, exe, c.Socket, "bpsh", "0", "cat", "/proc/uptime")
			f, err := strconv.ParseFloat(strings.Fields(out + " x")[0], 64)
			if err != nil {
				t.Fatalf("node 0 /proc/uptime: %q", out)
			}
			return f
		}
		before := uptime()
		job := pxeStart(t, ctx, nil, exe, c.Socket, "bpsh", "0", "sleep", "1000")
		if err := pxePoll(ctx, 30*time.Second, func() error {
			if out, _ := pxeOutput(ctx, nil, exe, c.Socket, "bpstat", "-p"); !strings.Contains(out, "sleep 1000") {
				return errors.New("the job is not running yet")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}

		since := time.Now()
		c.Master.Stop(30 * time.Second)
		t.Logf("beo master stopped in %v (%v)", time.Since(since).Round(time.Millisecond), c.Master.Err())
		select {
		case err := <-job.done:
			if err == nil {
				t.Errorf("bpsh of a job whose master stopped exited 0")
			}
		case <-time.After(30 * time.Second):
			t.Errorf("bpsh still running 30 s after its master stopped")
		}
		m, err := c.Lab.Start("master", append([]string{exe, "master"}, c.MasterArgs()...), nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Master = m
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := c.WaitUp(wctx, 0, 1, 2); err != nil {
			t.Fatalf("after the master's restart: %v\n%s", err, lab.Tail(m.Log, 30))
		}
		t.Logf("every node up again %v after the master stopped", time.Since(since).Round(100*time.Millisecond))
		if after := uptime(); after < before {
			t.Errorf("node 0 rebooted: uptime %.1f s before the restart, %.1f s after", before, after)
		}
		// The old master's job was hung up on the node when its session
		// ended (SIGHUP, SIGKILL 5 s later): nothing of it is left.
		if err := pxePoll(ctx, 20*time.Second, func() error {
			out, err := pxeOutput(ctx, nil, exe, c.Socket, "bpsh", "0", "pgrep", "-a", "-f", "^sleep 1000$")
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee) && ee.ExitCode() == 1: // none
				return nil
			case err != nil:
				return err
			}
			return fmt.Errorf("still on node 0: %s", strings.TrimSpace(out))
		}); err != nil {
			t.Errorf("the old master's job: %v", err)
		}
		if nfs.skip != "" {
			t.Logf("no NFS check: %s", nfs.skip)
			return
		}
		if err := os.Chmod(nfs.home, 0o1777); err != nil {
			t.Fatal(err)
		}
		pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "/bin/sh", "-c", "echo after the restart > /home/restarted")
		if b, err := os.ReadFile(filepath.Join(nfs.home, "restarted")); err != nil || string(b) != "after the restart\n" {
			t.Errorf("node 1's /home after the master's restart: %q, %v", b, err)
		}
	})
}
