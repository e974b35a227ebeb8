package master

import (
	"net/netip"
	"slices"

	"github.com/beo-cluster/beo/pkg/nodes"
)

// Dropped returns the nodes of cur (the table now, Table().All()) that are
// up and that Reconfigure(next) would take away, each in number order:
// removed are those next does not configure (the table forgets them);
// readdressed are those next gives another address (their connection is
// closed). A reload logs them before it applies next.
func Dropped(cur []nodes.Node, next Config) (removed, readdressed []int) {
	addrs := make(map[int]netip.Addr, len(next.Nodes))
	for _, d := range next.Nodes {
		addrs[d.Num] = d.Addr.Unmap()
	}
	for _, n := range cur {
		if n.State != nodes.Up {
			continue
		}
		switch a, ok := addrs[n.Num]; {
		case !ok:
			removed = append(removed, n.Num)
		case a != n.Addr.Unmap():
			readdressed = append(readdressed, n.Num)
		}
	}
	slices.Sort(removed)
	slices.Sort(readdressed)
	return removed, readdressed
}
