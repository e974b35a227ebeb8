package nodes

import (
	"fmt"
	"strconv"
	"strings"
)

// State is a node's state as bpstat shows it.
type State uint8

// The states, SPEC §3. The zero State is Down.
const (
	Down        State = iota // no communication with the node
	Boot                     // connected; node_up is running
	Up                       // node_up succeeded: open to users
	Error                    // node_up failed, or root said so: root only
	Unavailable              // set by root for maintenance: root only; running jobs go on
	Reboot                   // root asked it to reboot; stays until it reports again
	Halt                     // root asked it to halt
	Pwroff                   // root asked it to power off
	Alive                    // a non-Scyld host that only sends stats
	numStates
)

// StateNames lists every state name in State order, for nodespec's
// KnownStates and for messages.
func StateNames() []string {
	names := make([]string, numStates)
	for s := range numStates {
		names[s] = s.String()
	}
	return names
}

func (s State) String() string {
	switch s {
	case Down:
		return "down"
	case Boot:
		return "boot"
	case Up:
		return "up"
	case Error:
		return "error"
	case Unavailable:
		return "unavailable"
	case Reboot:
		return "reboot"
	case Halt:
		return "halt"
	case Pwroff:
		return "pwroff"
	case Alive:
		return "alive"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// ParseState reads a state name, as String writes it; case does not matter.
// "[up]" is a way of showing Up, not a state, and is not accepted.
func ParseState(name string) (State, error) {
	for s := range numStates {
		if strings.EqualFold(name, s.String()) {
			return s, nil
		}
	}
	return 0, fmt.Errorf("unknown node state %q (want one of %s)", name, strings.Join(StateNames(), ", "))
}

// MarshalText writes the state's name (JSON, slog).
func (s State) MarshalText() ([]byte, error) {
	if s >= numStates {
		return nil, fmt.Errorf("invalid node state %d", s)
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads a state name.
func (s *State) UnmarshalText(b []byte) error {
	st, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = st
	return nil
}

// connected reports whether the node is talking BProc to us: the states
// root may use and may ask to reboot, halt or power off.
func (s State) connected() bool {
	return s == Boot || s == Up || s == Error || s == Unavailable
}
