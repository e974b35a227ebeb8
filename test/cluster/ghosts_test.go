package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/sim"
)

// waitGhosts waits until the client bpsh has n remote processes of its
// own (not node-side children), each with a ghost, and returns them by
// node.
func waitGhosts(t *testing.T, c *sim.Cluster, bpsh, n int) map[int]bproc.Proc {
	t.Helper()
	return waitProcs(t, c, fmt.Sprintf("%d ghosts of bpsh %d", n, bpsh), func(p bproc.Proc) bool {
		return p.Client == bpsh && p.Parent == 0 && p.Ghost != bpsh
	}, n)
}

// waitProcs waits until n of the master's records match and returns
// them by node (the last one per node).
func waitProcs(t *testing.T, c *sim.Cluster, what string, match func(bproc.Proc) bool, n int) map[int]bproc.Proc {
	t.Helper()
	cl := client(t, c)
	var got map[int]bproc.Proc
	waitFor(t, what, 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ps, err := cl.Procs(ctx)
		if err != nil {
			return false
		}
		got = map[int]bproc.Proc{}
		k := 0
		for _, p := range ps {
			if match(p) {
				got[p.Node] = p
				k++
			}
		}
		return k == n
	})
	return got
}

func procFile(pid int, name string) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
	return strings.ReplaceAll(strings.TrimSuffix(string(b), "\x00"), "\x00", " ")
}

func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	n, _ := strconv.Atoi(f[1])
	return n
}

// TestGhostSignals: a remote process has a ghost on the master, a child
// of bpsh owned by the job's user, showing the command and the node;
// kill(1) with TERM, STOP and CONT, and pkill -f by command, on the
// ghost reach the remote process; ^Z and fg on bpsh stop and resume the
// ghost with it; SIGKILL on the ghost kills it.
func TestGhostSignals(t *testing.T) {
	c := start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	script := "trap 'echo term' TERM; trap 'echo usr1' USR1; echo ready; while :; do sleep 0.05; done"
	job, out, errb := startJob(ctx, t, c, 1, "0", "sh", "-c", script)
	g := waitGhosts(t, c, job.Process.Pid, 1)[0]
	if got, want := procFile(g.Ghost, "cmdline"), "sh -c "+script+" [node 0]"; got != want {
		t.Errorf("the ghost's command line: %q, want %q", got, want)
	}
	if got := procFile(g.Ghost, "comm"); got != "sh\n" {
		t.Errorf("the ghost's name: %q, want sh", got)
	}
	if p := ppid(g.Ghost); p != job.Process.Pid {
		t.Errorf("the ghost's parent: %d, want bpsh %d", p, job.Process.Pid)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d", g.Ghost), &st); err != nil || st.Uid != uint32(os.Getuid()) {
		t.Errorf("the ghost's owner: %d %v, want %d", st.Uid, err, os.Getuid())
	}
	kill := func(args ...string) {
		t.Helper()
		if b, err := exec.Command("kill", args...).CombinedOutput(); err != nil {
			t.Fatalf("kill %v: %v %s", args, err, b)
		}
	}
	ghost := strconv.Itoa(g.Ghost)
	kill("-TERM", ghost)
	waitFor(t, "TERM on the ghost reached the remote process", 10*time.Second, func() bool { return strings.Contains(out.String(), "term") })
	if b, err := exec.Command("pkill", "-USR1", "-f", `while :; do sleep 0\.05; done \[node 0\]$`).CombinedOutput(); err != nil {
		t.Fatalf("pkill: %v %s", err, b)
	}
	waitFor(t, "pkill -f on the ghost reached the remote process", 10*time.Second, func() bool { return strings.Contains(out.String(), "usr1") })
	kill("-STOP", ghost)
	waitFor(t, "the remote process stopped", 10*time.Second, func() bool { return stopped(g.PID) })
	if s := procState(g.Ghost); s != "T" {
		t.Errorf("the ghost's state after STOP: %q, want T", s)
	}
	kill("-CONT", ghost)
	waitFor(t, "the remote process resumed", 10*time.Second, func() bool { return resumed(g.PID) })
	// ^Z on bpsh stops the ghost with the remote process, fg resumes both.
	job.Process.Signal(syscall.SIGTSTP)
	waitFor(t, "the remote process and its ghost stopped by ^Z", 10*time.Second, func() bool {
		return stopped(g.PID) && procState(g.Ghost) == "T"
	})
	waitFor(t, "both running again", 10*time.Second, func() bool {
		job.Process.Signal(syscall.SIGCONT) // until it takes: see TestCtrlCAndStop
		gs := procState(g.Ghost)
		return resumed(g.PID) && gs != "T" && gs != ""
	})
	kill("-KILL", ghost)
	err := job.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 255 || !strings.Contains(errb.String(), "signal 9") {
		t.Errorf("bpsh after SIGKILL on the ghost: %v, stderr %q; want 255, killed by signal 9", err, errb.String())
	}
	if s := procState(g.PID); s != "" && s != "Z" {
		t.Errorf("the remote process after SIGKILL on its ghost: state %q", s)
	}
}

// TestGhostChildren: children a job forks on its node get ghosts too
// (children of bpsh, listed by bpstat -p with their node pids); a signal
// to a child's ghost reaches that child alone; an exec shows on the
// ghost; when the job ends, the children left die with it, and so do
// their ghosts.
func TestGhostChildren(t *testing.T) {
	c := start(t, 1)
	needCgroups(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	job, _, _ := startJob(ctx, t, c, 1, "0", "sh", "-c",
		"sleep 3050 >/dev/null 2>&1 & sleep 3052 >/dev/null 2>&1 & echo ready; exec sleep 3051")
	bpsh := job.Process.Pid
	kid := func(arg string) bproc.Proc {
		return waitProcs(t, c, "a ghost for "+arg, func(p bproc.Proc) bool {
			return p.Client == bpsh && p.Parent != 0 && p.Ghost != bpsh && strings.Join(p.Argv, " ") == "sleep "+arg
		}, 1)[0]
	}
	k1, k2 := kid("3050"), kid("3052")
	for _, k := range []bproc.Proc{k1, k2} {
		if got := procFile(k.Ghost, "cmdline"); got != strings.Join(k.Argv, " ")+" [node 0]" || ppid(k.Ghost) != bpsh {
			t.Errorf("child %d's ghost %d: %q, parent %d; want its command and node, parent bpsh %d", k.PID, k.Ghost, got, ppid(k.Ghost), bpsh)
		}
		if got := procFile(k.PID, "cmdline"); got != strings.Join(k.Argv, " ") {
			t.Errorf("child %d on the node: %q, want %q", k.PID, got, k.Argv)
		}
	}
	main := waitGhosts(t, c, bpsh, 1)[0]
	waitFor(t, "the exec shown on the job's ghost", 10*time.Second, func() bool {
		return procFile(main.Ghost, "cmdline") == "sleep 3051 [node 0]"
	})
	r := run(t, c, nil, "bpstat", "-p")
	if !strings.Contains(r.out, fmt.Sprintf("%d\t0\t%d\tsleep 3050\n", k1.Ghost, k1.PID)) {
		t.Errorf("bpstat -p: %q; want child %d with its ghost %d", r.out, k1.PID, k1.Ghost)
	}
	gone := func(pid int) func() bool {
		return func() bool { s := procState(pid); return s == "" || s == "Z" }
	}
	syscall.Kill(k1.Ghost, syscall.SIGTERM)
	waitFor(t, "the child killed through its ghost", 10*time.Second, gone(k1.PID))
	waitFor(t, "its ghost gone", 10*time.Second, gone(k1.Ghost))
	if s := procState(k2.PID); s == "" || s == "Z" {
		t.Fatalf("the other child died too (%q)", s)
	}
	syscall.Kill(main.Ghost, syscall.SIGTERM) // the job's process ends: so does the job
	if err := job.Wait(); err == nil {
		t.Error("bpsh exited 0; want the remote process killed by SIGTERM")
	}
	for _, pid := range []int{k2.PID, k2.Ghost, main.Ghost} {
		if !gone(pid)() {
			t.Errorf("pid %d (%s) still there after the job", pid, procFile(pid, "cmdline"))
		}
	}
}

// TestGhostGroups: the ghosts of a job's processes that share a process
// group on their node share one here, so kill -- -PGID on the master
// reaches every process of the group, as BProc's single process image
// has it.
func TestGhostGroups(t *testing.T) {
	c := start(t, 1)
	needCgroups(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	job, _, _ := startJob(ctx, t, c, 1, "0", "sh", "-c", "sleep 3060 & sleep 3061 & echo ready; wait")
	bpsh := job.Process.Pid
	var kids []bproc.Proc
	for _, arg := range []string{"3060", "3061"} {
		kids = append(kids, waitProcs(t, c, "a ghost for sleep "+arg, func(p bproc.Proc) bool {
			return p.Client == bpsh && p.Parent != 0 && p.Ghost != bpsh && strings.Join(p.Argv, " ") == "sleep "+arg
		}, 1)[0])
	}
	main := waitGhosts(t, c, bpsh, 1)[0]
	pgid := func(pid int) int { g, _ := syscall.Getpgid(pid); return g }
	group := pgid(main.Ghost)
	for _, k := range kids {
		if g := pgid(k.Ghost); g != group || g == pgid(bpsh) {
			t.Errorf("child %d's ghost %d is in group %d; want the job's ghosts' group %d (not bpsh's %d)", k.PID, k.Ghost, g, group, pgid(bpsh))
		}
	}
	if err := syscall.Kill(-group, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- job.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("kill -- -PGID of the ghosts' group did not end the job")
	}
	for _, k := range kids {
		if s := procState(k.PID); s != "" && s != "Z" {
			t.Errorf("child %d (%s) still there after the group's SIGTERM", k.PID, procFile(k.PID, "cmdline"))
		}
	}
}
