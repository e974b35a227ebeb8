package master

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/beo-cluster/beo/pkg/nodes"
)

func TestDropped(t *testing.T) {
	addr := func(n int) netip.Addr { return netip.AddrFrom4([4]byte{10, 54, 0, byte(100 + n)}) }
	// Eight nodes at .100-.107: 0-5 up, 6 down, 7 in error.
	var cur []nodes.Node
	for n := range 8 {
		nd := nodes.Node{Num: n, Addr: addr(n), State: nodes.Up}
		switch n {
		case 6:
			nd.State = nodes.Down
		case 7:
			nd.State = nodes.Error
		}
		cur = append(cur, nd)
	}
	defs := func(count int, addrOf func(int) netip.Addr) Config {
		var c Config
		for n := range count {
			c.Nodes = append(c.Nodes, NodeDef{Num: n, Addr: addrOf(n)})
		}
		return c
	}
	shifted := func(n int) netip.Addr { return addr(n + 1) }
	tests := []struct {
		name                 string
		next                 Config
		removed, readdressed []int
	}{
		{"same", defs(8, addr), nil, nil},
		{"grown", defs(16, addr), nil, nil},
		{"4in6 addresses", defs(8, func(n int) netip.Addr { return netip.AddrFrom16(addr(n).As16()) }), nil, nil},
		{"shrunk to 4", defs(4, addr), []int{4, 5}, nil},
		{"no nodes", Config{}, []int{0, 1, 2, 3, 4, 5}, nil},
		{"shrunk to 6: 6 and 7 are not up", defs(6, addr), nil, nil},
		{"iprange moved", defs(8, shifted), nil, []int{0, 1, 2, 3, 4, 5}},
		{"gap", Config{Nodes: []NodeDef{{Num: 0, Addr: addr(0)}, {Num: 5, Addr: addr(5)}}}, []int{1, 2, 3, 4}, nil},
		{"unordered", Config{Nodes: []NodeDef{{Num: 3, Addr: addr(4)}, {Num: 1, Addr: addr(1)}}}, []int{0, 2, 4, 5}, []int{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			removed, readdressed := Dropped(cur, tt.next)
			if !slices.Equal(removed, tt.removed) || !slices.Equal(readdressed, tt.readdressed) {
				t.Errorf("got removed %v readdressed %v, want %v %v", removed, readdressed, tt.removed, tt.readdressed)
			}
		})
	}
}
