package bpstat

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
)

// article is the cluster of using-bproc.txt: nodes 0-4 up, node 5 down.
func article() bproc.Status {
	st := bproc.Status{MasterAddr: "10.54.0.1"}
	for n := range 6 {
		ni := bproc.NodeInfo{Node: n, State: "up", Addr: "10.54.0.10" + string(rune('0'+n)), Mode: 0o111, User: "root", Group: "root"}
		if n == 5 {
			ni.State, ni.Mode, ni.Addr = "down", 0, ""
		}
		st.Nodes = append(st.Nodes, ni)
	}
	return st
}

func render(t *testing.T, st bproc.Status, args ...string) string {
	t.Helper()
	o, err := parse(args, applets.IO{Err: &bytes.Buffer{}})
	if err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	var b bytes.Buffer
	if err := show(&b, st, o, false); err != nil {
		t.Fatalf("show %q: %v", args, err)
	}
	return b.String()
}

func TestShow(t *testing.T) {
	mixed := article()
	mixed.Nodes[2].State = "error"
	mixed.Nodes[3].UID, mixed.Nodes[3].User = 1000, "forrest"
	mixed.Nodes = append(mixed.Nodes,
		bproc.NodeInfo{Node: 6, State: "up", Mode: 0o111, User: "root", Group: "root"},
		bproc.NodeInfo{Node: 7, State: "[up]", Mode: 0o111, User: "root", Group: "root"},
		bproc.NodeInfo{Node: 8, State: "alive", Mode: 0o111, User: "root", Group: "root"},
		bproc.NodeInfo{Node: 9, State: "unavailable", Mode: 0o110, UID: 7, GID: 8},
	)
	tests := []struct {
		name string
		st   bproc.Status
		args []string
		want string
	}{
		{"compact, the article", article(), nil, "" +
			"Node(s) Status Mode       User Group\n" +
			"5       down   ---------- root root\n" +
			"0-4     up     ---x--x--x root root\n"},
		{"compact -c", article(), []string{"-c"}, "" +
			"Node(s) Status Mode       User Group\n" +
			"5       down   ---------- root root\n" +
			"0-4     up     ---x--x--x root root\n"},
		{"compact, groups in state order, folded sets", mixed, nil, "" +
			"Node(s) Status      Mode       User    Group\n" +
			"5       down        ---------- root    root\n" +
			"9       unavailable ---x--x--- 7       8\n" +
			"2       error       ---x--x--x root    root\n" +
			"0-1,4,6 up          ---x--x--x root    root\n" +
			"3       up          ---x--x--x forrest root\n" +
			"7       [up]        ---x--x--x root    root\n" +
			"8       alive       ---x--x--x root    root\n"},
		{"long, the article", article(), []string{"-l"}, "" +
			"Node Address     Status Mode       User Group\n" +
			"0    10.54.0.100 up     ---x--x--x root root\n" +
			"1    10.54.0.101 up     ---x--x--x root root\n" +
			"2    10.54.0.102 up     ---x--x--x root root\n" +
			"3    10.54.0.103 up     ---x--x--x root root\n" +
			"4    10.54.0.104 up     ---x--x--x root root\n" +
			"5    -           down   ---------- root root\n"},
		{"status of node 3", article(), []string{"-s", "3"}, "up\n"},
		{"fields in fixed order", article(), []string{"-s", "-n", "4-5"}, "4\tup\n5\tdown\n"},
		{"combined flags", article(), []string{"-san", "0"}, "0\t10.54.0.100\tup\n"},
		{"all fields", article(), []string{"-g", "-u", "-m", "-s", "-a", "-n", "5"}, "5\t-\tdown\t----------\troot\troot\n"},
		{"addresses of up nodes", article(), []string{"-a", "allup"}, "10.54.0.100\n10.54.0.101\n10.54.0.102\n10.54.0.103\n10.54.0.104\n"},
		{"flags after specs", article(), []string{"1", "-s"}, "up\n"},
		{"master row", article(), []string{"-n", "-a", "-s", "-1"}, "-1\t10.54.0.1\tup\n"},
		{"master by name", article(), []string{"-a", "master"}, "10.54.0.1\n"},
		{"specs deduplicated and sorted", article(), []string{"-n", "3,1", "1-2"}, "1\n2\n3\n"},
		{"total", article(), []string{"-t"}, "6\n"},
		{"total of up", article(), []string{"-t", "allup"}, "5\n"},
		{"total of none", article(), []string{"-t", "allboot"}, "0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := render(t, tt.st, tt.args...); got != tt.want {
				t.Errorf("bpstat %s:\ngot\n%s\nwant\n%s", strings.Join(tt.args, " "), got, tt.want)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	st := article()
	st.Nodes[0].MACs = []string{"52:54:00:00:00:00"}
	st.Nodes[0].Since = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	got := render(t, st, "--json", "0,5")
	want := `{
  "master_addr": "10.54.0.1",
  "nodes": [
    {
      "node": 0,
      "state": "up",
      "addr": "10.54.0.100",
      "macs": [
        "52:54:00:00:00:00"
      ],
      "mode": "---x--x--x",
      "mode_octal": "0111",
      "uid": 0,
      "gid": 0,
      "user": "root",
      "group": "root",
      "since": "2024-05-01T12:00:00Z"
    },
    {
      "node": 5,
      "state": "down",
      "addr": "",
      "macs": [],
      "mode": "----------",
      "mode_octal": "0000",
      "uid": 0,
      "gid": 0,
      "user": "root",
      "group": "root",
      "since": null
    }
  ]
}
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	var b bytes.Buffer
	o, _ := parse([]string{"--json", "1"}, applets.IO{})
	if err := show(&b, st, o, true); err != nil {
		t.Fatal(err)
	}
	if line := `{"master_addr":"10.54.0.1","nodes":[{"node":1,"state":"up","addr":"10.54.0.101","macs":[],"mode":"---x--x--x","mode_octal":"0111","uid":0,"gid":0,"user":"root","group":"root","since":null}]}` + "\n"; b.String() != line {
		t.Errorf("one line: got %s want %s", b.String(), line)
	}
}

func TestParseErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-l", "-s"},
		{"-t", "--json"},
		{"-p", "-P"},
		{"-p", "-U"},
		{"-x"},
	} {
		_, err := parse(args, applets.IO{Err: &bytes.Buffer{}})
		var u *applets.Usage
		if !errors.As(err, &u) {
			t.Errorf("parse %q: got %v, want a usage error", args, err)
		}
	}
	_, err := pick(article(), []string{"7"})
	if err == nil || !strings.Contains(err.Error(), "no such node") {
		t.Errorf("pick 7: got %v", err)
	}
}

func TestApply(t *testing.T) {
	st := article()
	st = apply(st, bproc.NodeInfo{Node: 5, State: "boot"})
	st = apply(st, bproc.NodeInfo{Node: 7, State: "up"})
	if st.Nodes[5].State != "boot" || len(st.Nodes) != 8 || st.Nodes[6].State != "down" || st.Nodes[7].State != "up" {
		t.Errorf("apply: got %+v", st.Nodes)
	}
}

func procList() []bproc.Proc {
	return []bproc.Proc{
		{Node: 1, PID: 2346, Ghost: 1343, Argv: []string{"./hello-world", "-n", "2"}},
		{Node: 0, PID: 2345, Ghost: 1343, Argv: []string{"./hello-world", "-n", "2"}},
		{Node: 4, PID: 77, Ghost: 900, Argv: []string{"/usr/bin/sleep", "60"}},
	}
}

func TestProcs(t *testing.T) {
	var b bytes.Buffer
	if err := writeProcs(&b, procList()); err != nil {
		t.Fatal(err)
	}
	want := "Ghost\tNode\tPID\tCommand\n" +
		"900\t4\t77\t/usr/bin/sleep 60\n" +
		"1343\t0\t2345\t./hello-world -n 2\n" +
		"1343\t1\t2346\t./hello-world -n 2\n"
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestAnnotate(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"ps xf", "" +
			"  PID TTY      STAT   TIME COMMAND\n" +
			" 1130 ?        S      0:00 sshd: forrest@pts/2\n" +
			" 1133 pts/2    Ss     0:00  \\_ -bash\n" +
			" 1343 pts/2    S+     0:00      \\_ bpsh 0-1 ./hello-world -n 2\n" +
			" 1355 pts/2    R+     0:00      \\_ ps xf\n" +
			"  900 ?        S      0:00 bpsh 4 sleep 60\n",
			"" +
				"NODE     PID TTY      STAT   TIME COMMAND\n" +
				"        1130 ?        S      0:00 sshd: forrest@pts/2\n" +
				"        1133 pts/2    Ss     0:00  \\_ -bash\n" +
				"0-1     1343 pts/2    S+     0:00      \\_ bpsh 0-1 ./hello-world -n 2\n" +
				"0       2345                               \\_ [hello-world]\n" +
				"1       2346                               \\_ [hello-world]\n" +
				"        1355 pts/2    R+     0:00      \\_ ps xf\n" +
				"4        900 ?        S      0:00 bpsh 4 sleep 60\n" +
				"4         77                       \\_ [sleep]\n"},
		{"ps -ef, pid in the second column, last line unterminated", "" +
			"UID        PID  PPID  C STIME TTY          TIME CMD\n" +
			"root       900     1  0 10:00 ?        00:00:00 bpsh 4 sleep 60\n" +
			"root      1000     1  0 10:00 ?        00:00:00 900",
			"" +
				"NODE   UID        PID  PPID  C STIME TTY          TIME CMD\n" +
				"4      root       900     1  0 10:00 ?        00:00:00 bpsh 4 sleep 60\n" +
				"4                  77                                   \\_ [sleep]\n" +
				"       root      1000     1  0 10:00 ?        00:00:00 900"},
		{"no header: first numeric field", "" +
			"900 bpsh 4 sleep 60\n" +
			"abc 1343 x\n" +
			"\n" +
			"1000 other\n",
			"" +
				"4      900 bpsh 4 sleep 60\n" +
				"4       77 [sleep]\n" +
				"0-1    abc 1343 x\n" +
				"0          2345 [hello-world]\n" +
				"1          2346 [hello-world]\n" +
				"       \n" +
				"       1000 other\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := annotate(&b, strings.NewReader(tt.in), procList()); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			// Never drop or reorder: the input lines appear, in order,
			// after the node column.
			out := strings.Split(b.String(), "\n")
			j := 0
			for _, line := range strings.Split(strings.TrimSuffix(tt.in, "\n"), "\n") {
				for j < len(out) && (len(out[j]) < 7 || out[j][7:] != line) {
					j++
				}
				if j == len(out) {
					t.Fatalf("input line %q missing or out of order", line)
				}
				j++
			}
		})
	}
}

func TestAnnotateWideNodes(t *testing.T) {
	ps := []bproc.Proc{}
	for _, n := range []int{0, 2, 4, 6, 8} {
		ps = append(ps, bproc.Proc{Node: n, PID: 100 + n, Ghost: 5, Argv: []string{"x"}})
	}
	var b bytes.Buffer
	if err := annotate(&b, strings.NewReader("5 x\n6 y\n"), ps); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if lines[0] != "0,2,4,6,8 5 x" || !strings.HasPrefix(lines[6], "          6 y") {
		t.Errorf("got\n%s", b.String())
	}
}

// TestAnnotateGhosts: with a ghost per remote process (pkg/ghost), each
// ghost's line gets its node and its remote process under it; the
// client's line gets every node it runs on.
func TestAnnotateGhosts(t *testing.T) {
	ps := []bproc.Proc{
		{Node: 0, PID: 2345, Ghost: 1350, Client: 1343, Argv: []string{"./hello-world"}},
		{Node: 1, PID: 2346, Ghost: 1351, Client: 1343, Argv: []string{"./hello-world"}},
		{Node: 1, PID: 2400, Ghost: 1352, Client: 1343, Parent: 2346, Argv: []string{"sleep", "9"}},
	}
	in := "" +
		"  PID TTY      STAT   TIME COMMAND\n" +
		" 1343 pts/2    S+     0:00 bpsh 0-1 ./hello-world\n" +
		" 1350 pts/2    S      0:00  \\_ ./hello-world [node 0]\n" +
		" 1351 pts/2    S      0:00  \\_ ./hello-world [node 1]\n" +
		" 1352 pts/2    S      0:00  \\_ sleep 9 [node 1]\n"
	want := "" +
		"NODE     PID TTY      STAT   TIME COMMAND\n" +
		"0-1     1343 pts/2    S+     0:00 bpsh 0-1 ./hello-world\n" +
		"0       1350 pts/2    S      0:00  \\_ ./hello-world [node 0]\n" +
		"0       2345                           \\_ [hello-world]\n" +
		"1       1351 pts/2    S      0:00  \\_ ./hello-world [node 1]\n" +
		"1       2346                           \\_ [hello-world]\n" +
		"1       1352 pts/2    S      0:00  \\_ sleep 9 [node 1]\n" +
		"1       2400                           \\_ [sleep]\n"
	var b bytes.Buffer
	if err := annotate(&b, strings.NewReader(in), ps); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
