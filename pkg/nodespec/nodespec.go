// Package nodespec reads and writes the node lists every BProc command
// takes: `bpsh 1,3 date`, `bpctl -S 0-4 -s up`, `bpstat allup`.
//
// # The grammar
//
// A node spec is a comma-separated list of items. Each item is one of:
//
//	5          node 5
//	.5  n5     node 5 by name (beonss names nodes .N; nodename n%N is the usual alias)
//	1-3        nodes 1, 2, 3 (ascending: 3-1 is an error); either end may be
//	           written as a name (.1-.3, n1-n3)
//	4-         node 4 to the last node (BProc's open range)
//	-1  .-1    the master (head) node, -1
//	master     the master node, -1
//	all        every compute node, 0 … count-1
//	allSTATE   every node whose state is STATE: allup, allboot, allerror,
//	           allunavailable, alldown, allreboot, allhalt, allpwroff, allalive
//	allnotSTATE  every node whose state is not STATE: allnotdown, allnotup, …
//
// Numbers are decimal (BProc's strtol also took 010 as octal; nobody wants
// that). Keywords and state names match without regard to case, and spaces
// around an item are ignored. Empty items are skipped, so a script may build
// "1,2,3," in a loop, but a spec with no item at all is an error.
//
// States are whatever strings the Cluster reports: nodespec does not import
// the node table, so it works the same on the master, in the libbproc client
// and in tests. A Cluster that also implements KnownStates lets Parse reject
// a misspelt state (`allupp`) instead of quietly matching nothing. A node
// the master shows as "[up]" (up, but under another primary master) is not
// in allup, whose state must be exactly "up"; it is in allnotup.
//
// # Order and duplicates
//
// Parse returns nodes in the order the user wrote them and keeps duplicates:
// `bpsh 3,1,1 hostname` runs hostname on node 3, then twice on node 1 —
// exactly what was asked, as BProc did. Within one item, nodes come in
// ascending order. A caller that wants a set sorts and compacts the result
// (Fold does that for display).
//
// Every number must name a node that exists: a node at or above the cluster's
// count is an error (`node 12: no such node (cluster has 8 nodes)`) rather
// than being skipped as BProc did, because a typo in `bpctl -S 12 -R` should
// not succeed silently. A class (all, allup, …) may match no node; that is not
// an error, and the caller decides what an empty list means.
//
// # Folding
//
// Fold goes the other way for display: it sorts, removes duplicates and
// folds runs into ranges, `0-4,7`, with the master first as `-1`. Parse reads
// everything Fold writes back to the same set.
package nodespec

import (
	"fmt"
	"strings"
)

// Master is the node number of the master (head) node.
const Master = -1

// Cluster is what Parse needs to know about the cluster: how many compute
// nodes it has (numbered 0 … Count()-1) and the state name of each.
type Cluster interface {
	Count() int
	State(n int) string
}

// KnownStates may be implemented by a Cluster to list every valid state
// name; Parse then rejects allSTATE and allnotSTATE for any other name.
type KnownStates interface {
	KnownStates() []string
}

// Parse expands spec into node numbers, in the user's order, duplicates
// kept; -1 is the master. See the package doc for the grammar.
func Parse(spec string, c Cluster) ([]int, error) {
	p := parser{count: max(c.Count(), 0), c: c}
	if k, ok := c.(KnownStates); ok {
		p.known = k.KnownStates()
	}
	var out []int
	items := 0
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		items++
		var err error
		if out, err = p.item(out, item); err != nil {
			return nil, err
		}
	}
	if items == 0 {
		return nil, fmt.Errorf("empty node spec %q", spec)
	}
	return out, nil
}
