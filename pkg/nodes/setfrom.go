package nodes

import "time"

// SetStateFrom moves node n from state from to state to, as SetState
// does, but only if the node is in state from when the table looks: a
// compare-and-set for daemons that act on a state they read earlier
// (recvstats marks an alive node down when its stats stop, but must not
// knock down a node that connected to bpmaster meanwhile). A node in
// another state is left alone and the error wraps ErrTransition.
func (t *Table) SetStateFrom(a Actor, n int, from, to State) error {
	return t.update(n, KindState, func(nd *Node, now time.Time) error {
		if nd.State != from {
			return refuse(n, ErrTransition, "is %s, not %s", nd.State, from)
		}
		return transition(a, nd, to, now)
	})
}
