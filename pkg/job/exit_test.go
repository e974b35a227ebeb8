package job

import (
	"bytes"
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
			code := exitCode([]*proc{{node: 2, ran: true, result: tc.result}}, &stderr, nil)
			if code != tc.code || stderr.String() != tc.say {
				t.Errorf("exitCode = %d, said %q; want %d, %q", code, stderr.String(), tc.code, tc.say)
			}
		})
	}
}
