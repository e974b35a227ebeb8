package cluster

import (
	"sort"
	"strings"
	"testing"
	"time"
)

// TestJobMapParams: beomap's, beorun's and mpprun's map parameters as a
// user gives them: bad values and contradictions are usage errors (exit
// 2, the usage line, the option or variable named), an option overrides
// the variables that contradict it, the number of processes is bounded,
// a map is never silently altered, NO_OVER holds for explicit maps.
func TestJobMapParams(t *testing.T) {
	c := start(t, 2) // no stats: every node counts as one idle CPU
	env := userEnv(c)
	for _, tc := range []struct {
		name string
		env  []string
		argv []string
		code int
		out  string // the whole stdout when code is 0
		err  string // in stderr
	}{
		{"--np 0", nil, []string{"beomap", "--np", "0"}, 2, "", `--np "0": want a number of processes from 1 to 1048576`},
		{"--np -3", nil, []string{"beomap", "--np", "-3"}, 2, "", `--np "-3": want a number`},
		{"--np abc", nil, []string{"beomap", "--np", "abc"}, 2, "", `--np "abc": want a number`},
		{"NP=abc", []string{"NP=abc"}, []string{"beomap"}, 2, "", `NP="abc": want a number`},
		{"--np too many", nil, []string{"beomap", "--np", "1000000000"}, 2, "", "from 1 to 1048576"},
		{"NP too many", []string{"NP=1000000000"}, []string{"beomap"}, 2, "", `NP="1000000000": want a number of processes from 1 to 1048576`},
		{"beorun --np too many", nil, []string{"beorun", "--np", "1048577", "true"}, 2, "", "from 1 to 1048576"},
		{"mpprun --np -1", nil, []string{"mpprun", "--np", "-1", "true"}, 2, "", `--np "-1": want a number`},
		{"--all-local over NO_LOCAL", []string{"NO_LOCAL=1"}, []string{"beomap", "--all-local", "--np", "2"}, 0, "-1:-1\n", ""},
		{"--no-local over ALL_LOCAL", []string{"ALL_LOCAL=1"}, []string{"beomap", "--no-local"}, 0, "0\n", ""},
		{"--no-local over BEOWULF_JOB_MAP", []string{"BEOWULF_JOB_MAP=-1:0"}, []string{"beomap", "--no-local", "--np", "2"}, 0, "0:1\n", ""},
		{"--map over NO_LOCAL and EXCLUDE", []string{"NO_LOCAL=1", "EXCLUDE=0"}, []string{"beomap", "--map", "-1:0"}, 0, "-1:0\n", ""},
		{"ALL_LOCAL and NO_LOCAL", []string{"ALL_LOCAL=1", "NO_LOCAL=1"}, []string{"beomap"}, 2, "", "variables ALL_LOCAL and NO_LOCAL exclude each other"},
		{"ALL_CPUS and ALL_NODES", []string{"ALL_CPUS=1", "ALL_NODES=1"}, []string{"beomap"}, 2, "", "variables ALL_CPUS and ALL_NODES exclude each other"},
		{"BEOWULF_JOB_MAP on a node EXCLUDE excludes", []string{"BEOWULF_JOB_MAP=0:1", "EXCLUDE=0"}, []string{"beomap"}, 1, "", "puts process 0 on node 0, which EXCLUDE excludes"},
		{"BEOWULF_JOB_MAP and another node excluded", []string{"BEOWULF_JOB_MAP=0:0", "EXCLUDE=1"}, []string{"beomap"}, 0, "0:0\n", ""},
		{"BEOWULF_JOB_MAP on the master with NO_LOCAL", []string{"BEOWULF_JOB_MAP=-1:0", "NO_LOCAL=1"}, []string{"beomap"}, 1, "", "puts process 0 on the master, which NO_LOCAL excludes"},
		{"--map and --exclude", nil, []string{"beomap", "--map", "0", "--exclude", "1"}, 2, "", "--exclude and --map exclude each other"},
		{"--map 0::1", nil, []string{"beomap", "--map", "0::1"}, 2, "", `--map "0::1": item 2 of 3 is empty`},
		{"--map 0:1:", nil, []string{"beomap", "--map", "0:1:"}, 2, "", `--map "0:1:": item 3 of 3 is empty`},
		{"--map ''", nil, []string{"beomap", "--map", ""}, 2, "", "--map: empty job map"},
		{"BEOWULF_JOB_MAP=0::1", []string{"BEOWULF_JOB_MAP=0::1"}, []string{"beomap"}, 2, "", `BEOWULF_JOB_MAP="0::1": item 2 of 3 is empty`},
		{"empty BEOWULF_JOB_MAP is unset", []string{"BEOWULF_JOB_MAP="}, []string{"beomap"}, 0, "-1\n", ""},
		{"beorun --map 0::1", nil, []string{"beorun", "--map", "0::1", "true"}, 2, "", "usage: beorun"},
		{"NO_OVER and a map", []string{"NO_OVER=1"}, []string{"beomap", "--map", "0:0"}, 1, "",
			"NO_OVER: the job map puts 2 processes on node 0, which has 1 CPU: refusing to oversubscribe"},
		{"NO_OVER and a map that fits", []string{"NO_OVER=1"}, []string{"beomap", "--map", "-1:-1:0:1"}, 0, "-1:-1:0:1\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := runUser(t, nil, "/", append(env[:len(env):len(env)], tc.env...), 30*time.Second, tc.argv...)
			if r.code != tc.code || !strings.Contains(r.err, tc.err) || (tc.code == 0 && r.out != tc.out) {
				t.Fatalf("%v %v: got %+v; want exit %d, stdout %q, stderr with %q", tc.env, tc.argv, r, tc.code, tc.out, tc.err)
			}
			if usage := "usage: " + tc.argv[0]; tc.code == 2 && !strings.Contains(r.err, usage) {
				t.Errorf("%v %v: stderr %q has no %q", tc.env, tc.argv, r.err, usage)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("%v %v took %s", tc.env, tc.argv, d)
			}
		})
	}
	// mpprun says that its processes read /dev/null.
	if r := runUser(t, nil, "/", env, 30*time.Second, "mpprun", "-h"); r.code != 0 || !strings.Contains(r.err, "stdin from /dev/null") {
		t.Errorf("mpprun -h: got %+v, want the usage saying stdin is /dev/null", r)
	}
}

// TestJobOutputLines: under -p a process's last line without a newline
// is a prefixed line of its own (beorun, mpprun and bpsh share pkg/job);
// a failed process is named by rank and node by beorun and mpprun, by
// its node alone by bpsh (as BProc's).
func TestJobOutputLines(t *testing.T) {
	c := start(t, 2)
	env := userEnv(c)
	do := func(argv ...string) result {
		t.Helper()
		return runUser(t, nil, "/", env, 60*time.Second, argv...)
	}
	sorted := func(s string) string {
		lines := strings.SplitAfter(s, "\n")
		sort.Strings(lines)
		return strings.Join(lines, "")
	}
	if r := do("beorun", "-p", "--np", "3", "printf", "x"); r.code != 0 || sorted(r.out) != "  0: x\n  1: x\n -1: x\n" {
		t.Errorf("beorun -p --np 3 printf x: got %+v, want three lines", r)
	}
	if r := do("mpprun", "-p", "--map", "1:0", "printf", "x"); r.code != 0 || r.out != "  1: x\n  0: x\n" {
		t.Errorf("mpprun -p printf x: got %+v, want two lines", r)
	}
	if r := do("bpsh", "-p", "0-1", "printf", "x"); r.code != 0 || sorted(r.out) != "  0: x\n  1: x\n" {
		t.Errorf("bpsh -p printf x: got %+v, want two lines", r)
	}
	if r := do("beorun", "--map", "1:0:0", "sh", "-c", `[ $BPROC_RANK = 0 ] || kill -9 $$`); r.code != 255 ||
		sorted(r.err) != "rank 1 (node 0): killed by signal 9 (killed)\nrank 2 (node 0): killed by signal 9 (killed)\n" {
		t.Errorf("beorun, two ranks of node 0 killed: got %+v, want each named by rank and node", r)
	}
	if r := do("mpprun", "--map", "-1", "sh", "-c", "kill -9 $$"); r.code != 255 || r.err != "rank 0 (master): killed by signal 9 (killed)\n" {
		t.Errorf("mpprun, killed on the master: got %+v", r)
	}
	if r := do("bpsh", "1", "sh", "-c", "kill -9 $$"); r.code != 255 || r.err != "1: killed by signal 9 (killed)\n" {
		t.Errorf("bpsh, killed: got %+v, want BProc's N: error", r)
	}
}
