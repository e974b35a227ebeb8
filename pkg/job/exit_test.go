package job

import (
	"bytes"
	"errors"
	"syscall"
	"testing"

	"github.com/beo-cluster/beo/pkg/bproc"
)

// TestExitCode: the job's status and what it says of each process, an
// out-of-memory kill named whether it ended the process or only one of
// its children.
func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		result error
		code   int
		say    string
	}{
		{"exit 0", nil, 0, ""},
		{"exit 3", &bproc.ExitError{Node: 2, Status: 3}, 3, ""},
		{"killed", &bproc.ExitError{Node: 2, Signal: syscall.SIGTERM}, 255, "2: killed by signal 15 (terminated)\n"},
		{"out of memory", &bproc.ExitError{Node: 2, Signal: syscall.SIGKILL, OOMKills: 1}, 255,
			"2: killed by signal 9 (killed): out of memory, the kernel killed 1 process of the job\n"},
		{"a child out of memory", &bproc.ExitError{Node: 2, Status: 137, OOMKills: 2}, 137,
			"2: exit status 137: out of memory, the kernel killed 2 processes of the job\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := exitCode([]*proc{{node: 2, ran: true, result: tc.result}}, &stderr, nil, false)
			if code != tc.code || stderr.String() != tc.say {
				t.Errorf("exitCode = %d, said %q; want %d, %q", code, stderr.String(), tc.code, tc.say)
			}
		})
	}
}

// TestExitCodeRanks: under Ranks (beorun, mpprun) a failure names the
// rank and its node, since one node may hold several ranks; without it,
// the node alone, as BProc's bpsh.
func TestExitCodeRanks(t *testing.T) {
	procs := []*proc{
		{rank: 0, node: -1, ran: true, result: &bproc.ExitError{Node: -1, Signal: syscall.SIGKILL}},
		{rank: 1, node: 0, ran: true},
		{rank: 2, node: 0, ran: true, result: &bproc.ExitError{Node: 0, Signal: syscall.SIGKILL}},
		{rank: 3, node: 1, ran: true, result: &bproc.NodeError{Node: 1, Msg: "node is down"}},
		{rank: 4, node: 2, ran: true, result: errors.New("no such file")},
	}
	for _, tc := range []struct {
		ranks bool
		say   string
	}{
		{true, "rank 0 (master): killed by signal 9 (killed)\nrank 2 (node 0): killed by signal 9 (killed)\n" +
			"rank 3 (node 1): node is down\nrank 4 (node 2): no such file\n"},
		{false, "-1: killed by signal 9 (killed)\n0: killed by signal 9 (killed)\n1: node is down\n2: no such file\n"},
	} {
		var stderr bytes.Buffer
		if code := exitCode(procs, &stderr, nil, tc.ranks); code != 255 || stderr.String() != tc.say {
			t.Errorf("ranks %v: exitCode = %d, said %q; want 255, %q", tc.ranks, code, stderr.String(), tc.say)
		}
	}
}
