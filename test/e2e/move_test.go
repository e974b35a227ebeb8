package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/criu"
	"github.com/beo-cluster/beo/pkg/lab"
)

// moveConfig loads the kernel modules CRIU needs on every node (issue
// 14, part 4: README "Process migration").
var moveConfig = "bootmodule " + strings.Join(criu.Modules, " ") + "\n"

// pxeMove proves process migration on QEMU nodes 0 and 1, as a user:
// bpmove moves a running process keeping its ghost, output and exit
// status; a process moves itself with bproc.Move, and forks a copy of
// itself onto another node with bproc.Rfork; a process that cannot
// move (a file the target lacks) stays where it is, running; and
// another user may not move a process.
func pxeMove(t *testing.T, ctx context.Context, c *lab.Cluster, exe string) {
	t.Run("process migration", func(t *testing.T) {
		if _, err := os.Stat("/usr/sbin/criu"); err != nil {
			t.Fatalf("criu is not installed on the master (Debian package criu): %v", err)
		}
		u := pxeUser(t, ctx)
		bin := pxeSharedExe(t, exe)
		pxeSearchable(t, filepath.Dir(c.Socket))
		mover := pxeMover(t, filepath.Dir(bin))
		as := &syscall.Credential{Uid: u.uid, Gid: u.gid}

		t.Run("bpmove: ghost, output and exit status stay", func(t *testing.T) {
			pxeMoveLogs(t, ctx, c, bin)
			job := pxeStart(t, ctx, as, bin, c.Socket, "bpsh", "0", mover, "-before", "0", "-after", "40", "-every", "100ms")
			ghost := pxeGhostOn(t, ctx, c, bin, job, mover, 0)
			out, err := pxeOutput(ctx, as, bin, c.Socket, "bpmove", strconv.Itoa(ghost), "1")
			if err != nil {
				job.kill()
				t.Fatal(err)
			}
			if !strings.HasPrefix(out, fmt.Sprintf("%d: node 0 -> node 1 (pid ", ghost)) {
				t.Errorf("bpmove printed %q", out)
			}
			if g := pxeGhostOn(t, ctx, c, bin, job, mover, 1); g != ghost {
				t.Errorf("after the move the ghost is %d, want %d (unchanged)", g, ghost)
			}
			if args, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ghost)); !bytes.Contains(args, []byte("[node 1]")) {
				t.Errorf("ghost %d's command line %q does not say [node 1]", ghost, args)
			}
			job.expect(t, 7, 40, "")
		})

		t.Run("bproc.Move: a process moves itself", func(t *testing.T) {
			pxeMoveLogs(t, ctx, c, bin)
			job := pxeStart(t, ctx, as, bin, c.Socket, "bpsh", "0", mover, "-to", "1", "-before", "3", "-after", "3")
			job.expect(t, 7, 6, "moved to node 1\n")
		})

		t.Run("bproc.Rfork: a copy runs on another node", func(t *testing.T) {
			pxeMoveLogs(t, ctx, c, bin)
			job := pxeStart(t, ctx, as, bin, c.Socket, "bpsh", "0", mover, "-fork", "1", "-before", "3", "-after", "3", "-copy-after", "25", "-every", "200ms")
			pxeGhostOn(t, ctx, c, bin, job, mover, 1) // the copy's own ghost
			job.wait(t)
			if !strings.Contains(job.stdout.String(), "forked: pid ") {
				t.Errorf("the original did not print its copy's pid:\n%s\nstderr: %s", job.stdout.String(), job.stderr.String())
			}
			copied := job.copyLines(t)
			job.expect(t, 7, 6, "")
			want := "copy on node 1\n"
			for i := 3; i < 28; i++ {
				want += fmt.Sprintf("copy line %d\n", i)
			}
			if copied != want {
				t.Errorf("the copy printed:\n%s\nwant \"copy on node 1\" and copy line 3 … 27, in order", copied)
			}
			if b, err := os.ReadFile(c.Master.Log); err == nil { // what the fork took, for the record
				for _, l := range strings.Split(string(b), "\n") {
					if strings.Contains(l, "msg=forked") {
						t.Log(l)
					}
				}
			}
		})

		t.Run("what cannot be copied is not, and the process runs on", func(t *testing.T) {
			pxeMoveLogs(t, ctx, c, bin)
			held := fmt.Sprintf("/tmp/mover-held-%d", time.Now().UnixNano())
			job := pxeStart(t, ctx, as, bin, c.Socket, "bpsh", "1", mover, "-keep", held, "-fork", "0", "-before", "2", "-after", "2")
			if copied := job.copyLines(t); copied != "" {
				t.Errorf("a copy ran:\n%s", copied)
			}
			out := job.stdout.String()
			i := strings.Index(out, "rfork: ")
			if i < 0 {
				t.Fatalf("rfork of a process holding a file node 0 lacks did not fail:\n%s", out)
			}
			line := out[i : i+strings.IndexByte(out[i:], '\n')+1]
			if !strings.Contains(line, strings.TrimPrefix(held, "/")) {
				t.Errorf("rfork's error %q does not name the file node 0 lacks", line)
			}
			job.expect(t, 7, 4, line)
		})

		t.Run("what cannot move stays and runs on", func(t *testing.T) {
			pxeMoveLogs(t, ctx, c, bin)
			// A file only node 1 has: the restore on node 0 cannot
			// open it, and the process goes on on node 1.
			held := fmt.Sprintf("/tmp/mover-held-%d", time.Now().UnixNano())
			job := pxeStart(t, ctx, as, bin, c.Socket, "bpsh", "1", mover, "-keep", held, "-before", "0", "-after", "30", "-every", "100ms")
			ghost := pxeGhostOn(t, ctx, c, bin, job, mover, 1)
			out, err := pxeOutput(ctx, as, bin, c.Socket, "bpmove", strconv.Itoa(ghost), "0")
			if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(held, "/")) || !strings.Contains(err.Error(), "stays on node 1") {
				t.Errorf("bpmove of a process holding a file node 0 lacks: %q, %v; want a failure naming the file and node 1", out, err)
			}
			if g := pxeGhostOn(t, ctx, c, bin, job, mover, 1); g != ghost {
				t.Errorf("after a failed move the ghost is %d, want %d", g, ghost)
			}
			job.expect(t, 7, 30, "")
		})

		t.Run("an established TCP connection cannot move", func(t *testing.T) {
			pxeMoveLogs(t, ctx, c, bin)
			job := pxeStart(t, ctx, as, bin, c.Socket, "bpsh", "0", mover, "-hold", "-before", "0", "-after", "30", "-every", "100ms")
			ghost := pxeGhostOn(t, ctx, c, bin, job, mover, 0)
			out, err := pxeOutput(ctx, as, bin, c.Socket, "bpmove", strconv.Itoa(ghost), "1")
			if err == nil || !strings.Contains(err.Error(), "established TCP connection") || !strings.Contains(err.Error(), "stays on node 0") {
				t.Errorf("bpmove of a process holding a TCP connection: %q, %v; want a failure naming the connection and node 0", out, err)
			}
			job.expect(t, 7, 30, "")
		})

		t.Run("another user may not move it", func(t *testing.T) {
			pxeMoveLogs(t, ctx, c, bin)
			job := pxeStart(t, ctx, nil, bin, c.Socket, "bpsh", "0", mover, "-before", "0", "-after", "20", "-every", "100ms")
			ghost := pxeGhostOn(t, ctx, c, bin, job, mover, 0)
			_, err := pxeOutput(ctx, as, bin, c.Socket, "bpmove", strconv.Itoa(ghost), "1")
			if err == nil || !strings.Contains(err.Error(), "not permitted") {
				t.Errorf("another user's bpmove: %v; want operation not permitted", err)
			}
			job.expect(t, 7, 20, "")
		})
	})
}

// pxeMoveLogs has a failed migration subtest log what explains it: the
// master's lines on moves and forks, and the errors of the last CRIU
// dump and restore on nodes 0 and 1 (pkg/slave keeps their logs).
func pxeMoveLogs(t *testing.T, ctx context.Context, c *lab.Cluster, exe string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		if b, err := os.ReadFile(c.Master.Log); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, "move") || strings.Contains(l, "fork") || strings.Contains(l, "checkpoint") {
					t.Log(l)
				}
			}
		}
		dir := t.TempDir()
		for _, n := range []string{"0", "1"} {
			for _, f := range []string{"checkpoint.log", "restore.log"} {
				local := filepath.Join(dir, n+"-"+f)
				if _, err := pxeOutput(ctx, nil, exe, c.Socket, "bpcp", n+":/var/log/beo/"+f, local); err != nil {
					continue // no such run on that node
				}
				b, _ := os.ReadFile(local)
				var errs []string
				for _, l := range strings.Split(string(b), "\n") {
					if strings.Contains(l, "Error") || strings.Contains(l, "Warn") {
						errs = append(errs, l)
					}
				}
				t.Logf("node %s /var/log/beo/%s, its errors and warnings:\n%s", n, f, strings.Join(errs, "\n"))
			}
		}
	})
}

// pxeMover builds the migrating test program (testdata/mover) into dir.
func pxeMover(t *testing.T, dir string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	out := filepath.Join(dir, "mover")
	cmd := exec.Command(gobin, "build", "-o", out, "./testdata/mover")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the mover: %v\n%s", err, b)
	}
	return out
}

// pxeJob is a bpsh started in the background.
type pxeJob struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan error
	name   string
}

func pxeStart(t *testing.T, ctx context.Context, cred *syscall.Credential, exe, socket string, args ...string) *pxeJob {
	t.Helper()
	j := &pxeJob{done: make(chan error, 1), name: strings.Join(args, " ")}
	j.cmd = exec.CommandContext(ctx, exe, args...)
	j.cmd.Env = append(os.Environ(), bproc.SocketEnv+"="+socket)
	if cred != nil {
		j.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		j.cmd.Dir = "/"
	}
	j.cmd.Stdout, j.cmd.Stderr = &j.stdout, &j.stderr
	if err := j.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { j.done <- j.cmd.Wait() }()
	return j
}

func (j *pxeJob) kill() { j.cmd.Process.Kill(); <-j.done }

// wait waits (bounded) for the job to end.
func (j *pxeJob) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-j.done:
		j.done <- err // for expect
		return err
	case <-time.After(3 * time.Minute):
		j.kill()
		t.Fatalf("%s: still running after 3 minutes", j.name)
		return nil
	}
}

// copyLines waits for the job to end, takes the lines a forked copy of
// the mover printed (those starting "copy ") out of its output and
// returns them.
func (j *pxeJob) copyLines(t *testing.T) string {
	t.Helper()
	j.wait(t)
	var own, copied strings.Builder
	for _, l := range strings.SplitAfter(j.stdout.String(), "\n") {
		switch {
		case strings.HasPrefix(l, "copy "):
			copied.WriteString(l)
		case strings.HasPrefix(l, "forked: pid ") && strings.HasSuffix(l, " on node 1\n"):
		default:
			own.WriteString(l)
		}
	}
	j.stdout.Reset()
	j.stdout.WriteString(own.String())
	return copied.String()
}

// expect waits (bounded) for the job to end and checks its exit status,
// that it printed "line 0" … "line N-1" in order, each once, and extra
// among them.
func (j *pxeJob) expect(t *testing.T, status, lines int, extra string) {
	t.Helper()
	var err error
	select {
	case err = <-j.done:
	case <-time.After(3 * time.Minute):
		j.kill()
		t.Fatalf("%s: still running after 3 minutes", j.name)
	}
	got := 0
	if ee, ok := err.(*exec.ExitError); ok {
		got = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", j.name, err)
	}
	if got != status {
		t.Errorf("%s: exit status %d, want %d\nstderr: %s", j.name, got, status, j.stderr.String())
	}
	out := j.stdout.String()
	if extra != "" {
		if !strings.Contains(out, extra) {
			t.Errorf("%s: output lacks %q:\n%s", j.name, extra, out)
		}
		out = strings.Replace(out, extra, "", 1)
	}
	var want strings.Builder
	for i := range lines {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if out != want.String() {
		t.Errorf("%s: output is not line 0 … line %d, each once, in order:\n%s\nstderr: %s", j.name, lines-1, out, j.stderr.String())
	}
}

// pxeGhostOn waits until bpstat -p shows job j's process of prog on
// node n and returns its ghost's pid
// (not bpsh's pid, which stands for it for its first moments).
func pxeGhostOn(t *testing.T, ctx context.Context, c *lab.Cluster, exe string, j *pxeJob, prog string, n int) int {
	t.Helper()
	row := regexp.MustCompile(`(?m)^(\d+)\t` + strconv.Itoa(n) + `\t\d+\t` + regexp.QuoteMeta(prog) + ` `)
	var last string
	err := pxePoll(ctx, 2*time.Minute, func() error {
		out, err := pxeOutput(ctx, nil, exe, c.Socket, "bpstat", "-p")
		if err != nil {
			return err
		}
		last = out
		if m := row.FindStringSubmatch(out); m != nil && m[1] != strconv.Itoa(j.cmd.Process.Pid) {
			return nil
		}
		return fmt.Errorf("no %s on node %d", prog, n)
	})
	if err != nil {
		t.Fatalf("%v; bpstat -p:\n%s", err, last)
	}
	g, _ := strconv.Atoi(row.FindStringSubmatch(last)[1])
	return g
}
