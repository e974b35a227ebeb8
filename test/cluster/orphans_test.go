package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/sim"
)

// needCgroups skips a test when the simulation runs jobs without cgroups
// (no cgroup2 here, or not ours to write).
func needCgroups(t *testing.T, c *sim.Cluster) string {
	t.Helper()
	g := c.Cgroup(0)
	if g == "" {
		t.Skip("the simulation has no cgroups here (see its log)")
	}
	return g
}

// TestJobCgroup: a job runs in a cgroup of its own under its node's
// jobs group, and the group is gone once the job has ended.
func TestJobCgroup(t *testing.T) {
	c := start(t, 2)
	needCgroups(t, c)
	node1 := c.Cgroup(1)
	r := run(t, c, nil, "bpsh", "1", "cat", "/proc/self/cgroup")
	var got string // relative to the mount point
	for _, l := range strings.Split(r.out, "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			got = p
		}
	}
	if r.code != 0 || got == "" || !strings.HasSuffix(node1, filepath.Dir(got)) {
		t.Fatalf("bpsh 1 cat /proc/self/cgroup: got %+v; want a group under %s", r, node1)
	}
	job := filepath.Join(node1, filepath.Base(got))
	waitFor(t, "the job's group removed", 5*time.Second, func() bool {
		_, err := os.Stat(job)
		return os.IsNotExist(err)
	})
}

// TestJobLeavesNothing: what a job's process leaves behind — here a
// child in a session of its own, stdio closed — is killed when the job
// ends, instead of running on the node forever.
func TestJobLeavesNothing(t *testing.T) {
	c := start(t, 1)
	needCgroups(t, c)
	pidf, hostPidf := nodeFile(t, c, 0, "pid")
	r := run(t, c, nil, "bpsh", "-N", "0", "sh", "-c", "setsid sleep 3011 </dev/null >/dev/null 2>&1 & echo $! > "+pidf)
	if r.code != 0 {
		t.Fatalf("bpsh: %+v", r)
	}
	pid := readPid(t, hostPidf)
	waitFor(t, fmt.Sprintf("the job's leftover (pid %d) killed", pid), time.Second, func() bool { return procState(pid) == "" || procState(pid) == "Z" })
}

// TestSlaveKilledKillsJobs: when a node's bpslave is killed (SIGKILL:
// nothing in it runs any more), every process of every job it started —
// a child that left the job's process group and session too — is gone
// within a second (issue 14: no orphans).
func TestSlaveKilledKillsJobs(t *testing.T) {
	c := start(t, 2)
	needCgroups(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pidf, hostPidf := nodeFile(t, c, 0, "pid")
	startJob(ctx, t, c, 1, "0", "sh", "-c", "setsid sleep 3012 </dev/null >/dev/null 2>&1 & echo $! > "+pidf+"; echo ready; exec sleep 3013")
	listed, err := client(t, c).Procs(ctx)
	ps := own(listed) // not the setsid sleep, a node-side child
	if err != nil || len(ps) != 1 {
		t.Fatalf("procs: %v %v", listed, err)
	}
	pids := []int{ps[0].PID, readPid(t, hostPidf)}
	if err := c.Kill(0); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitFor(t, fmt.Sprintf("every process of the job (%v) gone", pids), time.Second, func() bool {
		for _, p := range pids {
			if s := procState(p); s != "" && s != "Z" {
				return false
			}
		}
		return true
	})
	t.Logf("the job's processes were gone %s after bpslave was killed", time.Since(killed).Round(time.Millisecond))
}

// TestMasterGoneKillsJobs: a job ends as soon as its node loses the
// master (here the master restarts: the node's session ends), its
// escaped child included — not after a hangup's grace.
func TestMasterGoneKillsJobs(t *testing.T) {
	c := start(t, 1)
	needCgroups(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pidf, hostPidf := nodeFile(t, c, 0, "pid")
	startJob(ctx, t, c, 1, "0", "sh", "-c", "trap '' HUP; setsid sleep 3014 </dev/null >/dev/null 2>&1 & echo $! > "+pidf+"; echo ready; while :; do sleep 0.1; done")
	listed, err := client(t, c).Procs(ctx)
	ps := own(listed) // not the setsid sleep, a node-side child
	if err != nil || len(ps) != 1 {
		t.Fatalf("procs: %v %v", listed, err)
	}
	pids := []int{ps[0].PID, readPid(t, hostPidf)}
	if err := c.RestartMaster(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fmt.Sprintf("every process of the job (%v) gone", pids), time.Second, func() bool {
		for _, p := range pids {
			if s := procState(p); s != "" && s != "Z" {
				return false
			}
		}
		return true
	})
}

func readPid(t *testing.T, f string) int {
	t.Helper()
	var pid int
	waitFor(t, "pid file "+f, 10*time.Second, func() bool {
		b, _ := os.ReadFile(f)
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		pid = n
		return err == nil && n > 0
	})
	return pid
}

// nodeFile names a file a job on node n writes: its path on the node,
// and where the test reads it on the host (in the node's view, the
// node's own directory).
func nodeFile(t *testing.T, c *sim.Cluster, n int, name string) (onNode, onHost string) {
	t.Helper()
	if !c.Views() {
		p := filepath.Join(t.TempDir(), name)
		return p, p
	}
	onNode = fmt.Sprintf("/tmp/%s-%d-%s", t.Name(), os.Getpid(), name)
	return onNode, filepath.Join(c.Dir, "nodes", strconv.Itoa(n), onNode)
}

// TestClientGoneEndsJob: a bpsh that dies while its job's output backs
// up (`bpsh 0 seq 1 100000000 | head -2`: head exits, bpsh dies of
// SIGPIPE) takes its job with it — the master lists it no more within
// moments, or within the node's hangup grace for a job that ignores
// SIGHUP. Before, the job's output stream was left unread, so its
// Result never came: the master listed it, and held its exec, for ever.
func TestClientGoneEndsJob(t *testing.T) {
	c := start(t, 1)
	for _, tc := range []struct {
		name, script string
		within       time.Duration
	}{
		{"it writes on", "echo ready; exec yes", 3 * time.Second},
		{"it ignores SIGHUP", "trap '' HUP; echo ready; exec yes", 15 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			job := exec.CommandContext(ctx, "bpsh", "0", "sh", "-c", tc.script)
			job.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
			out, err := job.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := job.Start(); err != nil {
				t.Fatal(err)
			}
			if l, err := bufio.NewReader(out).ReadString('\n'); l != "ready\n" {
				job.Process.Kill()
				t.Fatalf("first line %q, %v", l, err)
			}
			time.Sleep(300 * time.Millisecond) // its output backs up: nobody reads it
			job.Process.Kill()
			job.Wait()
			cl := client(t, c)
			waitFor(t, "the master lists no process", tc.within, func() bool {
				ps, err := cl.Procs(ctx)
				return err == nil && len(ps) == 0
			})
		})
	}
}

// TestOutputWriteFails: bpsh whose own output cannot be written (here
// /dev/full: a full disk) ends at once with an error that says so, and
// the job with it (SIGPIPE). Before, bpsh stopped reading the job's
// output: `bpsh 0 yes > /dev/full` hung until killed, and then for 5
// minutes more, and a job with little output "succeeded" without it.
func TestOutputWriteFails(t *testing.T) {
	c := start(t, 1)
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer full.Close()
	for _, script := range []string{"exec yes", "echo a; sleep 1; echo b"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		job := exec.CommandContext(ctx, "bpsh", "0", "sh", "-c", script)
		job.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
		var errb strings.Builder
		job.Stdout, job.Stderr = full, &errb
		start := time.Now()
		err := job.Run()
		timedOut := ctx.Err() != nil
		cancel()
		if took := time.Since(start); timedOut || err == nil || !strings.Contains(errb.String(), "no space left on device") {
			t.Errorf("bpsh 0 sh -c %q > /dev/full: %v after %v, stderr %q; want a failure naming the full device, at once", script, err, took.Round(time.Millisecond), errb.String())
		}
	}
	cl := client(t, c)
	waitFor(t, "the master lists no process", 5*time.Second, func() bool {
		ps, err := cl.Procs(context.Background())
		return err == nil && len(ps) == 0
	})
}
