package nodes_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/wire"
)

// The life of a node as the master sees it, and what users may do.
func Example() {
	clock := func() time.Time { return time.Date(2004, 12, 17, 1, 38, 0, 0, time.UTC) }
	tab := nodes.New(clock, nodes.Node{Num: 0, Addr: netip.MustParseAddr("10.0.0.100")})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := tab.Watch(ctx)

	alice := wire.Cred{UID: 1000, GID: 100}
	fmt.Println(tab.CanRun(alice, 0))
	fmt.Println(tab.SetState(nodes.Admin, 0, nodes.Up))
	_ = tab.SetState(nodes.System, 0, nodes.Boot) // bpslave connected
	_ = tab.SetState(nodes.System, 0, nodes.Up)   // node_up exited 0
	fmt.Println(tab.CanRun(alice, 0))
	_ = tab.SetMode(nodes.Admin, 0, 0100)
	fmt.Println(tab.CanRun(alice, 0))
	fmt.Println(tab.SetState(nodes.User, 0, nodes.Down))

	for range 3 {
		c := <-changes
		fmt.Println(c.Kind, c.Node, c.Old.State, "→", c.New.State, nodes.FormatMode(c.New.Mode))
	}
	// Output:
	// node 0: not available to users (down)
	// node 0: cannot go from down to up
	// <nil>
	// node 0: permission denied (mode ---x------, owner 0, group 0)
	// node 0: only root may change node states
	// state 0 down → boot ---x--x--x
	// state 0 boot → up ---x--x--x
	// mode 0 up → up ---x------
}
