package nodes

import "strconv"

// Actor is who causes a change; the transition table in the package doc
// says what each may do.
type Actor uint8

// The actors. The zero Actor is User, the one allowed least.
const (
	User   Actor = iota // anyone but root: may change nothing
	Admin               // root, through bpctl
	System              // the master itself: connections, node_up, heartbeats, stats
)

func (a Actor) String() string {
	switch a {
	case User:
		return "user"
	case Admin:
		return "admin"
	case System:
		return "system"
	}
	return "actor(" + strconv.Itoa(int(a)) + ")"
}

// allowed reports whether actor a may move a node from one state to
// another; from == to means "may set the state the node already has",
// which then changes nothing. It is the table in the package doc.
func allowed(a Actor, from, to State) bool {
	if from >= numStates || to >= numStates {
		return false
	}
	switch a {
	case System:
		switch to {
		case Down, Boot:
			return true
		case Up, Error:
			return from == Boot
		case Reboot, Halt, Pwroff:
			return from.connected() || from == to
		case Alive:
			return from == Down || from == Alive
		}
	case Admin:
		switch to {
		case Up:
			return from == Up || from == Error || from == Unavailable
		case Error, Unavailable, Reboot, Halt, Pwroff:
			return from.connected()
		}
	}
	return false
}
