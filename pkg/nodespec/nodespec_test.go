package nodespec

import (
	"slices"
	"strings"
	"testing"
)

// fake is a cluster whose node n is in states[n].
type fake []string

func (f fake) Count() int { return len(f) }
func (f fake) State(n int) string {
	if n < 0 || n >= len(f) {
		return ""
	}
	return f[n]
}

// listed is a cluster that also lists its valid states.
type listed struct{ fake }

func (listed) KnownStates() []string {
	return []string{"down", "boot", "up", "error", "unavailable", "reboot", "halt", "pwroff", "alive"}
}

// eight is an 8-node cluster with one node in (nearly) every state.
var eight = fake{"up", "up", "down", "boot", "error", "unavailable", "[up]", "alive"}

func TestParse(t *testing.T) {
	tests := []struct {
		spec string
		c    Cluster
		want []int
	}{
		{"5", eight, []int{5}},
		{"0", eight, []int{0}},
		{"007", eight, []int{7}},
		{"1,3", eight, []int{1, 3}},
		{"3,1", eight, []int{3, 1}},
		{"1,1", eight, []int{1, 1}},
		{"1-3", eight, []int{1, 2, 3}},
		{"2-2", eight, []int{2}},
		{"5-", eight, []int{5, 6, 7}},
		{"1-3,0,2", eight, []int{1, 2, 3, 0, 2}},
		{"-1", eight, []int{-1}},
		{".-1", eight, []int{-1}},
		{"master", eight, []int{-1}},
		{"MASTER", eight, []int{-1}},
		{"master,0", eight, []int{-1, 0}},
		{".5", eight, []int{5}},
		{"n5", eight, []int{5}},
		{"N5", eight, []int{5}},
		{".1-.3", eight, []int{1, 2, 3}},
		{"n1-n3", eight, []int{1, 2, 3}},
		{"n1-3", eight, []int{1, 2, 3}},
		{"all", eight, []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{"All", eight, []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{"allup", eight, []int{0, 1}},
		{"allUP", eight, []int{0, 1}},
		{"allnotdown", eight, []int{0, 1, 3, 4, 5, 6, 7}},
		{"allnotup", eight, []int{2, 3, 4, 5, 6, 7}},
		{"alldown", eight, []int{2}},
		{"allboot", eight, []int{3}},
		{"allerror", eight, []int{4}},
		{"allunavailable", eight, []int{5}},
		{"allalive", eight, []int{7}},
		{"allreboot", eight, nil},
		{"allhalt", eight, nil},
		{"allpwroff", eight, nil},
		{"allup_2", eight, nil}, // shaped like a state; no node is in it
		{"allup", listed{eight}, []int{0, 1}},
		{"allnotdown", listed{eight}, []int{0, 1, 3, 4, 5, 6, 7}},
		{"allnotpwroff", listed{eight}, []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{"allup,-1,allup", eight, []int{0, 1, -1, 0, 1}},
		{" 1 , 2 ", eight, []int{1, 2}},
		{"1,,2,", eight, []int{1, 2}},
		{"all", fake{}, nil},
		{"master", fake{}, []int{-1}},
		{"allup", fake{"down", "down"}, nil},
		// a state that happens to start with "not" is matched whole when listed
		{"allnotready", listedWith{fake{"notready", "up"}, "notready", "up"}, []int{0}},
		{"allnotready", fake{"notready", "up"}, []int{0, 1}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.spec, tt.c)
		if err != nil {
			t.Errorf("Parse(%q) error: %v", tt.spec, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Parse(%q) = %v, want %v", tt.spec, got, tt.want)
		}
	}
}

// listedWith is a cluster with a custom list of states.
type listedWith struct {
	fake
	a, b string
}

func (l listedWith) KnownStates() []string { return []string{l.a, l.b} }

func TestParseErrors(t *testing.T) {
	tests := []struct {
		spec string
		c    Cluster
		want string // substring of the error
	}{
		{"", eight, `empty node spec ""`},
		{",", eight, `empty node spec ","`},
		{" ", eight, `empty node spec`},
		{"8", eight, "node 8: no such node (cluster has 8 nodes)"},
		{"12", eight, "node 12: no such node (cluster has 8 nodes)"},
		{"1", fake{"up"}, "node 1: no such node (cluster has 1 node)"},
		{"0", fake{}, "node 0: no such node (cluster has 0 nodes)"},
		{"99999999999999999999999", eight, "node 99999999999999999999999: no such node"},
		{"1,n9", eight, "node 9: no such node"},
		{"0-12", eight, "node 12: no such node"},
		{"3-1", eight, `bad node range "3-1"`},
		{"foo", eight, `bad node spec item "foo"`},
		{"1,foo,2", eight, `bad node spec item "foo"`},
		{"-2", eight, `bad node spec item "-2"`},
		{"-", eight, `bad node spec item "-"`},
		{"1--2", eight, `bad node spec item "1--2"`},
		{"1-2-3", eight, `bad node spec item "1-2-3"`},
		{"-1-3", eight, `bad node spec item "-1-3"`},
		{"master-3", eight, `bad node spec item "master-3"`},
		{"+1", eight, `bad node spec item "+1"`},
		{"0x10", eight, `bad node spec item "0x10"`},
		{"n", eight, `bad node spec item "n"`},
		{".", eight, `bad node spec item "."`},
		{"x5", eight, `bad node spec item "x5"`},
		{"allnot", eight, `bad node spec item "allnot"`},
		{"all!up", eight, `bad node spec item "all!up"`},
		{"all up", eight, `bad node spec item "all up"`},
		{"all[up]", eight, `bad node spec item "all[up]"`},
		{"allupp", listed{eight}, `bad node spec item "allupp": unknown state "upp" (known: down, boot, up,`},
		{"allnotupp", listed{eight}, `unknown state "upp"`},
	}
	for _, tt := range tests {
		got, err := Parse(tt.spec, tt.c)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want error %q", tt.spec, got, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error %q, want it to contain %q", tt.spec, err, tt.want)
		}
	}
}

func TestFold(t *testing.T) {
	tests := []struct {
		nodes []int
		want  string
	}{
		{nil, ""},
		{[]int{3}, "3"},
		{[]int{0, 1, 2, 3, 4, 7}, "0-4,7"},
		{[]int{7, 4, 3, 2, 1, 0, 0, 3}, "0-4,7"},
		{[]int{0, 1}, "0-1"},
		{[]int{0, 2, 4}, "0,2,4"},
		{[]int{-1, 0, 1, 2}, "-1,0-2"},
		{[]int{-1, -1}, "-1"},
		{[]int{5, -1}, "-1,5"},
		{[]int{-3, -2, -1, 0}, "-3,-2,-1,0"},
		{[]int{9, 10, 11, 13, 14}, "9-11,13-14"},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.nodes)
		if got := Fold(tt.nodes); got != tt.want {
			t.Errorf("Fold(%v) = %q, want %q", in, got, tt.want)
		}
		if !slices.Equal(tt.nodes, in) {
			t.Errorf("Fold(%v) changed its argument to %v", in, tt.nodes)
		}
	}
}
