package nodes

import (
	"io/fs"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// Table is the node table; all its methods are safe for concurrent use.
// The zero Table is an empty table on time.Now; New makes a populated one.
type Table struct {
	clock func() time.Time

	mu    sync.Mutex
	nodes []Node
	subs  map[*subscriber]struct{}
}

// New returns a table of the given nodes, all down, owned by root:root
// with DefaultMode. Only each node's Num, MACs and Addr are used; see the
// package doc for numbering. clock tells the time of each change; nil means
// time.Now.
func New(clock func() time.Time, nodes ...Node) *Table {
	t := &Table{clock: clock}
	now := t.now()
	for _, n := range layout(nodes) {
		t.nodes = append(t.nodes, fresh(n, now))
	}
	return t
}

// layout places the given nodes at their numbers, 0 … highest; a number
// never given is a node with only its number, a negative one is dropped,
// and a later node replaces an earlier one with the same number.
func layout(given []Node) []Node {
	count := 0
	for _, n := range given {
		count = max(count, n.Num+1)
	}
	out := make([]Node, count)
	for i := range out {
		out[i].Num = i
	}
	for _, n := range given {
		if n.Num >= 0 {
			out[n.Num].MACs = slices.Clone(n.MACs)
			out[n.Num].Addr = n.Addr
		}
	}
	return out
}

// fresh is the node a newly configured n starts as.
func fresh(n Node, now time.Time) Node {
	return Node{Num: n.Num, MACs: n.MACs, Addr: n.Addr, State: Down, Since: now, Mode: DefaultMode}
}

// Count is the number of compute nodes, numbered 0 … Count()-1.
func (t *Table) Count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.nodes)
}

// Get returns a copy of node n; false if there is no node n.
func (t *Table) Get(n int) (Node, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n < 0 || n >= len(t.nodes) {
		return Node{}, false
	}
	return t.nodes[n].clone(), true
}

// All returns a copy of every node, in number order.
func (t *Table) All() []Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Node, len(t.nodes))
	for i, n := range t.nodes {
		out[i] = n.clone()
	}
	return out
}

// CanRun reports whether the caller may start work on node n (Node.CanRun).
func (t *Table) CanRun(c wire.Cred, n int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.check(n); err != nil {
		return err
	}
	return t.nodes[n].CanRun(c)
}

// SetState moves node n to state s if actor a may (see the package doc).
func (t *Table) SetState(a Actor, n int, s State) error {
	return t.update(n, KindState, func(nd *Node, now time.Time) error {
		return transition(a, nd, s, now)
	})
}

// transition moves nd to state s at now if actor a may.
func transition(a Actor, nd *Node, s State, now time.Time) error {
	n := nd.Num
	switch {
	case a == User:
		return refuse(n, fs.ErrPermission, "only root may change node states")
	case a == Admin && nd.Secondary:
		return refuse(n, ErrSecondary, "controlled by another master")
	case !allowed(a, nd.State, s):
		return refuse(n, ErrTransition, "cannot go from %s to %s", nd.State, s)
	}
	if nd.State != s {
		nd.State, nd.Since = s, now
		if s == Down {
			nd.Secondary = false
		}
	}
	return nil
}

// SetOwner makes uid the owner of node n; Admin only.
func (t *Table) SetOwner(a Actor, n int, uid uint32) error {
	return t.update(n, KindOwner, func(nd *Node, _ time.Time) error {
		if a != Admin {
			return refuse(n, fs.ErrPermission, "only root may change a node's owner")
		}
		nd.Owner = uid
		return nil
	})
}

// SetGroup makes gid the group of node n; Admin only.
func (t *Table) SetGroup(a Actor, n int, gid uint32) error {
	return t.update(n, KindGroup, func(nd *Node, _ time.Time) error {
		if a != Admin {
			return refuse(n, fs.ErrPermission, "only root may change a node's group")
		}
		nd.Group = gid
		return nil
	})
}

// SetMode sets node n's mode; Admin only. Only the execute bits are kept.
func (t *Table) SetMode(a Actor, n int, m os.FileMode) error {
	return t.update(n, KindMode, func(nd *Node, _ time.Time) error {
		if a != Admin {
			return refuse(n, fs.ErrPermission, "only root may change a node's mode")
		}
		nd.Mode = m & modeBits
		return nil
	})
}

// SetSecondary records whether node n's primary master is another one;
// System only: the node says so when it connects.
func (t *Table) SetSecondary(a Actor, n int, secondary bool) error {
	return t.update(n, KindSecondary, func(nd *Node, _ time.Time) error {
		if a != System {
			return refuse(n, fs.ErrPermission, "only the master may change a node's primary master")
		}
		nd.Secondary = secondary
		return nil
	})
}

// update applies change to a copy of node n and, if change accepts and the
// node differs, stores it and publishes it as a change of the given kind.
// now is the time of the change.
func (t *Table) update(n int, kind Kind, change func(nd *Node, now time.Time) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.check(n); err != nil {
		return err
	}
	now := t.now()
	old := t.nodes[n]
	nd := old
	if err := change(&nd, now); err != nil {
		return err
	}
	if same(old, nd) {
		return nil
	}
	t.nodes[n] = nd
	t.publish(Change{Kind: kind, Node: n, Old: old, New: nd, Time: now})
	return nil
}

// now reads the table's clock; the zero Table uses time.Now.
func (t *Table) now() time.Time {
	if t.clock == nil {
		return time.Now()
	}
	return t.clock()
}

// check reports whether node n exists; t.mu is held.
func (t *Table) check(n int) error {
	if n < 0 || n >= len(t.nodes) {
		return refuse(n, ErrNoNode, "no such node (cluster has %s)", plural(len(t.nodes)))
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return "1 node"
	}
	return strconv.Itoa(n) + " nodes"
}

// same reports whether two nodes are alike in every field.
func same(a, b Node) bool {
	return a.Num == b.Num && slices.Equal(a.MACs, b.MACs) && a.Addr == b.Addr &&
		a.State == b.State && a.Since.Equal(b.Since) && a.Owner == b.Owner &&
		a.Group == b.Group && a.Mode == b.Mode && a.Secondary == b.Secondary
}

// Reconfigure replaces the node list after a config reload: nodes that
// remain keep their state, owner, group, mode and Secondary mark and take
// their new MACs and address; new nodes start down; nodes beyond the new
// list are removed. Each added, removed or readdressed node is published,
// in number order.
func (t *Table) Reconfigure(nodes ...Node) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	next := layout(nodes)
	for i := range max(len(next), len(t.nodes)) {
		switch {
		case i >= len(next):
			old := t.nodes[i]
			t.publish(Change{Kind: KindRemoved, Node: i, Old: old, New: Node{Num: i}, Time: now})
		case i >= len(t.nodes):
			next[i] = fresh(next[i], now)
			t.publish(Change{Kind: KindAdded, Node: i, Old: Node{Num: i}, New: next[i], Time: now})
		default:
			old := t.nodes[i]
			nd := old
			nd.MACs, nd.Addr = next[i].MACs, next[i].Addr
			next[i] = nd
			if !same(old, nd) {
				t.publish(Change{Kind: KindConfig, Node: i, Old: old, New: nd, Time: now})
			}
		}
	}
	t.nodes = next
}
