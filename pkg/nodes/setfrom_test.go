package nodes

import (
	"errors"
	"testing"
)

func TestSetStateFrom(t *testing.T) {
	tests := []struct {
		name     string
		start    []State // System transitions from down to reach the start state
		from, to State
		want     error
		end      State
	}{
		{"alive to down", []State{Alive}, Alive, Down, nil, Down},
		{"down to alive", nil, Down, Alive, nil, Alive},
		{"node connected meanwhile", []State{Boot}, Alive, Down, ErrTransition, Boot},
		{"up node left alone", []State{Boot, Up}, Alive, Down, ErrTransition, Up},
		{"from matches but not allowed", []State{Boot}, Boot, Alive, ErrTransition, Boot},
	}
	for _, tt := range tests {
		tab := New(nil, Node{Num: 0})
		for _, s := range tt.start {
			must(t, tab.SetState(System, 0, s))
		}
		err := tab.SetStateFrom(System, 0, tt.from, tt.to)
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("%s: SetStateFrom(%s, %s) = %v, want %v", tt.name, tt.from, tt.to, err, tt.want)
		}
		if got, _ := tab.Get(0); got.State != tt.end {
			t.Errorf("%s: state %s, want %s", tt.name, got.State, tt.end)
		}
	}
	if err := New(nil).SetStateFrom(System, 3, Alive, Down); !errors.Is(err, ErrNoNode) {
		t.Errorf("SetStateFrom on no node: %v, want ErrNoNode", err)
	}
}
