package beomap

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/stats"
	"github.com/beo-cluster/beo/pkg/wire"
)

// idle returns n usable idle nodes with cpus CPUs each.
func idle(n, cpus int) []Node {
	out := make([]Node, n)
	for i := range out {
		out[i] = Node{Num: i, Usable: true, CPUs: cpus}
	}
	return out
}

func with(ns []Node, f func(ns []Node)) []Node { f(ns); return ns }

func TestCompute(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     Params
		nodes []Node
		want  string
		err   string
	}{
		{"default: one process, on the master", Params{}, idle(3, 1), "-1", ""},
		{"np 4: master then one per node", Params{NP: 4}, idle(3, 1), "-1:0:1:2", ""},
		{"the issue's example: node 0 has two CPUs", Params{NP: 5},
			with(idle(3, 1), func(ns []Node) { ns[0].CPUs = 2 }), "-1:0:0:1:2", ""},
		{"no-local", Params{NP: 3, NoLocal: true}, idle(3, 1), "0:1:2", ""},
		{"master excluded is no-local", Params{NP: 2, Exclude: []int{-1}}, idle(3, 1), "0:1", ""},
		{"least loaded first", Params{NP: 3, NoLocal: true},
			with(idle(3, 1), func(ns []Node) { ns[0].Load = 0.9; ns[1].Load = 0.5 }), "2:1:0", ""},
		{"a node's ranks are consecutive", Params{NP: 4, NoLocal: true},
			with(idle(2, 2), func(ns []Node) { ns[1].Load = 0.2 }), "0:0:1:1", ""},
		{"busy node's CPUs count", Params{NP: 4, NoLocal: true},
			with(idle(2, 2), func(ns []Node) { ns[0].Load = 2 }), "1:1:1:0", ""},
		{"oversubscribe only when it must", Params{NP: 5, NoLocal: true}, idle(2, 2), "0:0:0:1:1", ""},
		{"no-over refuses", Params{NP: 5, NoLocal: true, NoOver: true}, idle(2, 2), "", "NO_OVER: 5 processes to place on 2 usable nodes with 4 CPUs"},
		{"no-over allows exactly the CPUs", Params{NP: 4, NoLocal: true, NoOver: true}, idle(2, 2), "0:0:1:1", ""},
		{"unusable nodes skipped", Params{NP: 3},
			with(idle(4, 1), func(ns []Node) { ns[0].Usable = false; ns[2].Usable = false }), "-1:1:3", ""},
		{"exclude", Params{NP: 3, Exclude: []int{1}}, idle(3, 1), "-1:0:2", ""},
		{"unknown CPUs count as one", Params{NP: 3, NoLocal: true}, idle(2, 0), "0:0:1", ""},
		{"all-nodes", Params{AllNodes: true}, idle(3, 4), "-1:0:1:2", ""},
		{"all-nodes no-local", Params{AllNodes: true, NoLocal: true}, idle(3, 4), "0:1:2", ""},
		{"all-cpus", Params{AllCPUs: true, NoLocal: true},
			with(idle(3, 2), func(ns []Node) { ns[1].Usable = false }), "0:0:2:2", ""},
		{"all-local", Params{AllLocal: true, NP: 3}, idle(3, 1), "-1:-1:-1", ""},
		{"all-local no-local", Params{AllLocal: true, NoLocal: true}, idle(3, 1), "", "all-local and no-local exclude each other"},
		{"all-local master excluded", Params{AllLocal: true, Exclude: []int{-1}}, idle(3, 1), "", "all-local and exclude exclude each other"},
		{"np over the limit", Params{NP: MaxNP + 1}, idle(3, 1), "", "from 1 to 1048576"},
		{"all-local np at the limit", Params{AllLocal: true, NP: MaxNP}, nil, strings.Repeat("-1:", MaxNP-1) + "-1", ""},
		{"no nodes, master only", Params{NP: 1}, nil, "-1", ""},
		{"no usable node", Params{NP: 2},
			with(idle(2, 1), func(ns []Node) { ns[0].Usable = false; ns[1].Usable = false }), "", "none of the 2 nodes is up and usable by you"},
		{"why no node is usable", Params{NP: 2},
			with(idle(3, 1), func(ns []Node) {
				for i := range ns {
					ns[i].Usable, ns[i].Why = false, "not up ([up])"
				}
				ns[1].Why = "not up (down)"
			}), "", "none of the 3 nodes is up and usable by you (2: not up ([up]), 1: not up (down))"},
		{"everything excluded", Params{NP: 2, Exclude: []int{0, 1}}, idle(2, 1), "", "every usable node (2) is excluded"},
		{"map as given", Params{Map: []int{2, -1, 2}}, idle(3, 1), "2:-1:2", ""},
		{"map and np", Params{Map: []int{2, -1, 2}, NP: 9}, idle(3, 1), "", "np and map exclude each other"},
		// A map is checked against the exclusions given with it (variables).
		{"map and no-local", Params{Map: []int{0, 1}, NoLocal: true}, idle(3, 1), "0:1", ""},
		{"map on the master and no-local", Params{Map: []int{0, -1}, NoLocal: true}, idle(3, 1), "", "puts process 1 on the master, which NO_LOCAL excludes"},
		{"map and exclude", Params{Map: []int{0, 1}, Exclude: []int{2}}, idle(3, 1), "0:1", ""},
		{"map on an excluded node", Params{Map: []int{0, 1}, Exclude: []int{0}}, idle(3, 1), "", "puts process 0 on node 0, which EXCLUDE excludes"},
		{"map, no-over, oversubscribed", Params{Map: []int{0, 0, 0, 0}, NoOver: true}, idle(2, 2), "",
			"NO_OVER: the job map puts 4 processes on node 0, which has 2 CPUs: refusing to oversubscribe"},
		{"map, no-over, unknown CPUs count as one", Params{Map: []int{1, 0, 0}, NoOver: true}, idle(2, 0), "", "2 processes on node 0, which has 1 CPU"},
		{"map, no-over, every CPU", Params{Map: []int{-1, -1, 0, 1, 0, 1}, NoOver: true}, idle(2, 2), "-1:-1:0:1:0:1", ""},
		{"map with an unusable node", Params{Map: []int{0, 1}},
			with(idle(2, 1), func(ns []Node) { ns[1].Usable = false; ns[1].Why = "not up (down)" }), "", "job map: node 1: not up (down)"},
		{"map with no such node", Params{Map: []int{5}}, idle(2, 1), "", "node 5: no such node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Compute(tc.p, tc.nodes)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want error containing %q", m, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := Format(m); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParseList(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"-1:0:0:1", "-1:0:0:1", ""},
		{"n1,.2,master", "1:2:-1", ""},
		{"0-2:1", "0:1:2:1", ""},
		{"7", "", "no such node"},
		{"", "", "empty node list"},
		{":", "", `":": item 1 of 2 is empty`},
		{"0::1", "", `"0::1": item 2 of 3 is empty`},
		{"0:1:", "", `"0:1:": item 3 of 3 is empty`},
		{"0,,1", "", "item 2 of 3 is empty"},
		{"0: :1", "", "item 2 of 3 is empty"},
		{"allup", "", ""}, // a class matches no node of a list: an empty result
	} {
		got, err := ParseList(tc.in, 4)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseList(%q): got %v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseList(%q): %v", tc.in, err)
			continue
		}
		if Format(got) != tc.want {
			t.Errorf("ParseList(%q) = %s, want %s", tc.in, Format(got), tc.want)
		}
	}
}

// TestOptionsWin: the one rule of the package doc: an option replaces
// its variable and every variable that contradicts it; contradicting
// options, and contradicting variables left, are errors; bad values are
// errors naming where they came from.
func TestOptionsWin(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	for _, tc := range []struct {
		name string
		env  func(string) string
		args []string
		want Raw
		err  string
	}{
		{"env only", env("NP", "4", "NO_LOCAL", "1", "EXCLUDE", "2"), nil, Raw{NP: "4", NoLocal: true, Exclude: "2"}, ""},
		{"env false values", env("NO_LOCAL", "0", "ALL_CPUS", "no", "NO_OVER", "off"), nil, Raw{}, ""},
		{"empty variables are unset", env("NP", " ", "BEOWULF_JOB_MAP", "", "EXCLUDE", ""), nil, Raw{}, ""},
		{"--np beats NP", env("NP", "4"), []string{"--np", "2"}, Raw{NP: "2"}, ""},
		{"--np beats BEOWULF_JOB_MAP", env("BEOWULF_JOB_MAP", "0:1"), []string{"-np", "2"}, Raw{NP: "2"}, ""},
		{"--all-cpus beats NP", env("NP", "4"), []string{"--all-cpus"}, Raw{AllCPUs: true}, ""},
		{"--no-local=false beats NO_LOCAL", env("NO_LOCAL", "1", "NP", "3"), []string{"--no-local=false"}, Raw{NP: "3"}, ""},
		{"--exclude beats EXCLUDE", env("EXCLUDE", "1"), []string{"--exclude", "0:2"}, Raw{Exclude: "0:2"}, ""},
		{"--exclude '' excludes nothing", env("EXCLUDE", "1", "NP", "2"), []string{"--exclude", ""}, Raw{NP: "2"}, ""},
		{"--map with a value like a flag", env(), []string{"--map", "-1:0"}, Raw{Map: "-1:0"}, ""},
		{"aliases", env(), []string{"--nolocal", "--allcpus"}, Raw{NoLocal: true, AllCPUs: true}, ""},
		{"--all-local keeps NP", env("NP", "3"), []string{"--all-local"}, Raw{NP: "3", AllLocal: true}, ""},
		{"--np keeps ALL_LOCAL", env("ALL_LOCAL", "1"), []string{"--np", "3"}, Raw{NP: "3", AllLocal: true}, ""},
		// An option over the variables that contradict it.
		{"--all-local beats NO_LOCAL", env("NO_LOCAL", "1"), []string{"--all-local", "--np", "2"}, Raw{NP: "2", AllLocal: true}, ""},
		{"--no-local beats ALL_LOCAL", env("ALL_LOCAL", "1", "NP", "2"), []string{"--no-local"}, Raw{NP: "2", NoLocal: true}, ""},
		{"--all-local beats EXCLUDE", env("EXCLUDE", "-1"), []string{"--all-local"}, Raw{AllLocal: true}, ""},
		{"--exclude beats ALL_LOCAL", env("ALL_LOCAL", "1"), []string{"--exclude", "0"}, Raw{Exclude: "0"}, ""},
		{"--map beats NO_LOCAL and EXCLUDE", env("NO_LOCAL", "1", "EXCLUDE", "0", "NO_OVER", "1"), []string{"--map", "-1:0"}, Raw{Map: "-1:0", NoOver: true}, ""},
		{"--no-local beats BEOWULF_JOB_MAP", env("BEOWULF_JOB_MAP", "-1:0", "NP", "2"), []string{"--no-local"}, Raw{NP: "2", NoLocal: true}, ""},
		{"--exclude beats BEOWULF_JOB_MAP", env("BEOWULF_JOB_MAP", "0:1"), []string{"--exclude", "0"}, Raw{Exclude: "0"}, ""},
		{"--all-nodes beats ALL_CPUS", env("ALL_CPUS", "1"), []string{"--all-nodes"}, Raw{AllNodes: true}, ""},
		{"--all-local=false does not beat NO_LOCAL", env("NO_LOCAL", "1"), []string{"--all-local=false"}, Raw{NoLocal: true}, ""},
		{"an option settles contradicting variables", env("ALL_LOCAL", "1", "NO_LOCAL", "1"), []string{"--no-local"}, Raw{NoLocal: true}, ""},
		// Contradictions.
		{"options", env(), []string{"--map", "0", "--np", "2"}, Raw{}, "--np and --map exclude each other"},
		{"options: map and exclude", env(), []string{"--map", "0", "--exclude", "1"}, Raw{}, "--exclude and --map exclude each other"},
		{"variables: all-local, no-local", env("ALL_LOCAL", "1", "NO_LOCAL", "1"), nil, Raw{}, "variables ALL_LOCAL and NO_LOCAL exclude each other"},
		{"variables: all-cpus, all-nodes", env("ALL_CPUS", "1", "ALL_NODES", "1"), nil, Raw{}, "variables ALL_CPUS and ALL_NODES exclude each other"},
		{"variables: map, NP", env("NP", "4", "BEOWULF_JOB_MAP", "0:1"), nil, Raw{}, "variables NP and BEOWULF_JOB_MAP exclude each other"},
		// Kept together: Compute checks the map against them.
		{"variables: map, EXCLUDE", env("BEOWULF_JOB_MAP", "0:1", "EXCLUDE", "0"), nil, Raw{Map: "0:1", Exclude: "0"}, ""},
		{"variables: map, NO_LOCAL", env("BEOWULF_JOB_MAP", "-1:0", "NO_LOCAL", "1"), nil, Raw{Map: "-1:0", NoLocal: true}, ""},
		{"variables left by an option", env("ALL_CPUS", "1", "ALL_NODES", "1"), []string{"--no-local"}, Raw{}, "variables ALL_CPUS and ALL_NODES"},
		// Bad values.
		{"--np 0", env(), []string{"--np", "0"}, Raw{}, `--np "0": want a number of processes from 1 to 1048576`},
		{"--np -3", env(), []string{"--np", "-3"}, Raw{}, `--np "-3": want`},
		{"--np abc", env(), []string{"--np", "abc"}, Raw{}, `--np "abc": want`},
		{"--np ''", env(), []string{"--np", ""}, Raw{}, `--np "": want`},
		{"--np over the limit", env(), []string{"--np", "1000000000"}, Raw{}, `--np "1000000000": want a number of processes from 1 to 1048576`},
		{"--np at the limit", env(), []string{"--np", "1048576"}, Raw{NP: "1048576"}, ""},
		{"NP=abc", env("NP", "abc"), nil, Raw{}, `NP="abc": want a number of processes from 1 to 1048576`},
		{"NP over the limit", env("NP", "1048577"), nil, Raw{}, `NP="1048577": want`},
		{"NP=abc beaten by --np", env("NP", "abc"), []string{"--np", "2"}, Raw{NP: "2"}, ""},
		{"--map ''", env("BEOWULF_JOB_MAP", "0"), []string{"--map", ""}, Raw{}, "--map: empty job map"},
		{"--map 0::1", env(), []string{"--map", "0::1"}, Raw{}, `--map "0::1": item 2 of 3 is empty`},
		{"--map 0:1:", env(), []string{"--map", "0:1:"}, Raw{}, `--map "0:1:": item 3 of 3 is empty`},
		{"--exclude 0,,1", env(), []string{"--exclude", "0,,1"}, Raw{}, `--exclude "0,,1": item 2 of 3 is empty`},
		{"BEOWULF_JOB_MAP=0::1", env("BEOWULF_JOB_MAP", "0::1"), nil, Raw{}, `BEOWULF_JOB_MAP="0::1": item 2 of 3 is empty`},
		{"EXCLUDE=:1", env("EXCLUDE", ":1"), nil, Raw{}, `EXCLUDE=":1": item 1 of 2 is empty`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f := AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			got, err := f.Merge(FromEnv(tc.env))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if tc.args == nil { // the environment alone: Env says the same
				if e, err := Env(tc.env); err != nil || e != got {
					t.Errorf("Env: got %+v, %v; want %+v", e, err, got)
				}
			}
		})
	}
}

// TestParamsNP: Params (the library's way, without Merge) checks NP too.
func TestParamsNP(t *testing.T) {
	for _, np := range []string{"0", "-3", "abc", "1048577"} {
		if _, err := (Raw{NP: np}).Params(3); err == nil || !strings.Contains(err.Error(), "from 1 to 1048576") {
			t.Errorf("NP %q: got %v, want an error naming the limit", np, err)
		}
	}
}

// TestFromStatus: states, permissions and stats as the master and
// recvstats report them.
func TestFromStatus(t *testing.T) {
	st := bproc.Status{Nodes: []bproc.NodeInfo{
		{Node: 0, State: "up", Mode: 0o111},
		{Node: 1, State: "down", Mode: 0o111},
		{Node: 2, State: "up", Mode: 0o100, UID: 7}, // owner only
		{Node: 3, State: "up", Mode: 0o010, GID: 9}, // group only
		{Node: 4, State: "unavailable", Mode: 0o111},
		{Node: 5, State: "[up]", Mode: 0o111},
		{Node: 6, State: "up", Mode: 0o111},
	}}
	snap := &dashboard.Snapshot{Nodes: []dashboard.Node{
		{Node: 0, Stats: &stats.Status{Report: stats.Report{Load: [3]float64{1.5, 0, 0}, Cores: make([]stats.Core, 4)}}},
		{Node: 6},
	}}
	for _, tc := range []struct {
		name   string
		who    wire.Cred
		usable string
	}{
		{"a user", wire.Cred{UID: 1000, GID: 1000}, "0,6"},
		{"the owner of 2", wire.Cred{UID: 7, GID: 1000}, "0,2,6"},
		{"in group 9", wire.Cred{UID: 1000, GID: 1000, Groups: []uint32{9}}, "0,3,6"},
		{"root", wire.Cred{}, "0,2,3,6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, haveStats := FromStatus(st, snap, tc.who)
			if !haveStats {
				t.Errorf("stats not seen")
			}
			var got []string
			for _, n := range ns {
				if n.Usable {
					got = append(got, itoa(n.Num))
				}
			}
			if strings.Join(got, ",") != tc.usable {
				t.Errorf("usable nodes: got %v, want %s (nodes %+v)", got, tc.usable, ns)
			}
			if ns[0].CPUs != 4 || ns[0].Load != 1.5 || ns[6].CPUs != 0 {
				t.Errorf("stats: node 0 %+v, node 6 %+v; want 4 CPUs load 1.5, and no stats", ns[0], ns[6])
			}
			if ns[1].Usable || !strings.Contains(ns[1].Why, "down") {
				t.Errorf("node 1: %+v, want unusable because down", ns[1])
			}
		})
	}
}

func itoa(n int) string { return Format([]int{n}) }
