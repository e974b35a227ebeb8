package cluster

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
)

// TestMoveRefusals: what bpmove refuses before anything moves, and a
// move that fails leaves the process running where it was, its output
// and exit status whole. (Moves that succeed need CRIU on a node's own
// kernel: test/e2e TestPXE "process migration". Here the simulated
// nodes share the host's kernel, whose CRIU cannot run or whose pid the
// original still holds, so a real attempt fails — and must fail safely.)
func TestMoveRefusals(t *testing.T) {
	c := start(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	script := "echo ready; i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); sleep 0.05; done; exit 7"
	job, out, errb := startJob(ctx, t, c, 1, "0", "sh", "-c", script)
	p := waitGhosts(t, c, job.Process.Pid, 1)[0]
	ghost := strconv.Itoa(p.Ghost)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"usage", []string{ghost}, "usage: bpmove"},
		{"bad node", []string{ghost, "x1"}, `bad node "x1"`},
		{"no such process", []string{"999999", "1"}, "no remote process for pid 999999"},
		{"already there", []string{ghost, "0"}, "already runs there"},
		{"no such node", []string{ghost, "9"}, "no such node"},
		{"a pid on its node", []string{"-n", "0", "1", "1"}, "no such process 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.CommandContext(ctx, "bpmove", tc.args...)
			cmd.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
			b, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(b), tc.want) {
				t.Errorf("bpmove %v: %v\n%s\nwant a failure saying %q", tc.args, err, b, tc.want)
			}
		})
	}

	t.Run("a failed move leaves it running", func(t *testing.T) {
		cl := client(t, c)
		_, err := cl.MoveGhost(ctx, p.Ghost, 1)
		var ne *bproc.NodeError
		if err == nil || !(errors.As(err, &ne) || strings.Contains(err.Error(), "criu is not installed")) {
			t.Fatalf("MoveGhost on the simulated cluster: %v; want a node's failure", err)
		}
		t.Logf("as expected: %v", err)
	})

	err := job.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("the job ended with %v, want exit status 7; stderr: %s", err, errb.String())
	}
	var want strings.Builder
	want.WriteString("ready\n")
	for i := range 200 {
		want.WriteString("line " + strconv.Itoa(i) + "\n")
	}
	if out.String() != want.String() {
		t.Errorf("output after a failed move:\n%s\nwant ready, line 0 … line 199", out.String())
	}
}

// TestRforkRefusals: bproc.Rfork where no copy can be made returns why
// to the process, which goes on where it was and nothing else runs: on
// the simulated nodes CRIU cannot checkpoint (they share the host's
// kernel), a process on the master cannot fork onto a node, and a node
// holds one copy of a process (its pid) — so not its own. (A copy that
// runs: test/e2e TestPXE "process migration".)
func TestRforkRefusals(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: a node's own client socket (node views)")
	}
	c := start(t, 2)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		target string
		want   string
	}{
		{"no checkpoint on a simulated node", []string{"bpsh", "0", self}, "1", "rfork failed: node 0: rfork: "},
		{"onto its own node", []string{"bpsh", "0", self}, "0", "runs there already"},
		{"from the master", []string{self}, "1", "only a process on a node can move or fork itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(helperEnv, "rfork "+tc.target)
			r := run(t, c, nil, tc.args[0], tc.args[1:]...)
			if r.code != 0 || !strings.Contains(r.out, tc.want) || !strings.HasSuffix(r.out, "goes on\n") || strings.Contains("\n"+r.out, "\ncopy\n") {
				t.Errorf("%v: %+v; want exit 0, %q, and the process going on alone", tc.args, r, tc.want)
			}
			t.Log(strings.TrimSpace(r.out))
		})
	}
	cl := client(t, c)
	if procs, err := cl.Procs(context.Background()); err != nil || len(procs) != 0 {
		t.Errorf("remote processes left: %+v, %v", procs, err)
	}
}
