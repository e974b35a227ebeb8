package nodes

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"
)

// The transition tables, as the package doc draws them: rows "from",
// columns "to"; x allowed, = allowed and changes nothing, . refused. A row
// left out refuses everything.
const (
	systemGrid = `
	              down boot up error unavailable reboot halt pwroff alive
	down           =    x   .    .        .         .     .     .     x
	boot           x    =   x    x        .         x     x     x     .
	up             x    x   .    .        .         x     x     x     .
	error          x    x   .    .        .         x     x     x     .
	unavailable    x    x   .    .        .         x     x     x     .
	reboot         x    x   .    .        .         =     .     .     .
	halt           x    x   .    .        .         .     =     .     .
	pwroff         x    x   .    .        .         .     .     =     .
	alive          x    x   .    .        .         .     .     .     =
	`
	adminGrid = `
	              down boot up error unavailable reboot halt pwroff alive
	boot           .    .   .    x        x         x     x     x     .
	up             .    .   =    x        x         x     x     x     .
	error          .    .   x    =        x         x     x     x     .
	unavailable    .    .   x    x        =         x     x     x     .
	`
	userGrid = `
	              down boot up error unavailable reboot halt pwroff alive
	`
)

// grid reads a transition table: want[from][to] is the cell's mark.
func grid(t *testing.T, text string) (want [numStates][numStates]byte) {
	t.Helper()
	for i := range want {
		for j := range want[i] {
			want[i][j] = '.'
		}
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	var cols []State
	for _, name := range strings.Fields(lines[0]) {
		cols = append(cols, mustState(t, name))
	}
	if len(cols) != int(numStates) {
		t.Fatalf("grid header has %d states, want %d", len(cols), numStates)
	}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) != len(cols)+1 {
			t.Fatalf("grid row %q has %d cells, want %d", line, len(f)-1, len(cols))
		}
		from := mustState(t, f[0])
		for j, cell := range f[1:] {
			want[from][cols[j]] = cell[0]
		}
	}
	return want
}

func mustState(t *testing.T, name string) State {
	t.Helper()
	s, err := ParseState(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTransitionGrid(t *testing.T) {
	for _, tt := range []struct {
		actor Actor
		grid  string
	}{{System, systemGrid}, {Admin, adminGrid}, {User, userGrid}} {
		want := grid(t, tt.grid)
		for from := range numStates {
			for to := range numStates {
				mark := want[from][to]
				if mark == '=' && from != to || mark == 'x' && from == to {
					t.Fatalf("%s grid: mark %c at %s→%s", tt.actor, mark, from, to)
				}
				if got := allowed(tt.actor, from, to); got != (mark != '.') {
					t.Errorf("allowed(%s, %s, %s) = %v, want %v", tt.actor, from, to, got, !got)
				}
			}
		}
	}
}

// TestSetStateGrid runs every actor × from × to through Table.SetState
// and checks the error, the new state, Since and what was published.
func TestSetStateGrid(t *testing.T) {
	start := time.Date(2004, 12, 17, 1, 38, 0, 0, time.UTC)
	for _, tt := range []struct {
		actor Actor
		grid  string
	}{{System, systemGrid}, {Admin, adminGrid}, {User, userGrid}} {
		want := grid(t, tt.grid)
		for from := range numStates {
			for to := range numStates {
				name := fmt.Sprintf("%s/%s→%s", tt.actor, from, to)
				clk := &fakeClock{now: start}
				tab := New(clk.Now, Node{Num: 0}, Node{Num: 1})
				tab.nodes[1].State, tab.nodes[1].Since = from, start
				ctx, cancel := context.WithCancel(context.Background())
				ch := tab.Watch(ctx)
				clk.Advance(time.Second)

				err := tab.SetState(tt.actor, 1, to)
				got, _ := tab.Get(1)
				ok := want[from][to] != '.'
				switch {
				case ok && err != nil:
					t.Errorf("%s: SetState: %v, want success", name, err)
				case !ok && err == nil:
					t.Errorf("%s: SetState succeeded, want refusal", name)
				case !ok && tt.actor == User:
					if !errors.Is(err, fs.ErrPermission) || err.Error() != "node 1: only root may change node states" {
						t.Errorf("%s: error %q, want fs.ErrPermission", name, err)
					}
				case !ok:
					wantMsg := fmt.Sprintf("node 1: cannot go from %s to %s", from, to)
					if !errors.Is(err, ErrTransition) || err.Error() != wantMsg {
						t.Errorf("%s: error %q, want %q (ErrTransition)", name, err, wantMsg)
					}
				}
				wantState, wantSince := from, start
				if ok && from != to {
					wantState, wantSince = to, start.Add(time.Second)
				}
				if got.State != wantState || !got.Since.Equal(wantSince) {
					t.Errorf("%s: node is %s since %v, want %s since %v", name, got.State, got.Since, wantState, wantSince)
				}
				changes := drain(t, tab, ch)
				cancel()
				if wantN := btoi(ok && from != to); len(changes) != wantN {
					t.Errorf("%s: %d changes published, want %d", name, len(changes), wantN)
				} else if wantN == 1 {
					c := changes[0]
					if c.Kind != KindState || c.Node != 1 || c.Old.State != from || c.New.State != to || !c.Time.Equal(wantSince) {
						t.Errorf("%s: published %+v", name, c)
					}
				}
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestSecondary checks the [up] mark: System sets it, root may not
// control such a node, and going down clears it.
func TestSecondary(t *testing.T) {
	tab := New(nil, Node{Num: 0})
	must(t, tab.SetState(System, 0, Boot))
	must(t, tab.SetState(System, 0, Up))
	if err := tab.SetSecondary(Admin, 0, true); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("Admin SetSecondary: %v, want fs.ErrPermission", err)
	}
	must(t, tab.SetSecondary(System, 0, true))
	nd, _ := tab.Get(0)
	if got, want := nd.Display(), "[up]"; got != want {
		t.Errorf("Display() = %q, want %q", got, want)
	}
	for _, s := range []State{Reboot, Unavailable, Error, Up} {
		err := tab.SetState(Admin, 0, s)
		if !errors.Is(err, ErrSecondary) || err.Error() != "node 0: controlled by another master" {
			t.Errorf("Admin SetState(%s) on [up]: %v, want ErrSecondary", s, err)
		}
	}
	must(t, tab.SetState(System, 0, Down))
	nd, _ = tab.Get(0)
	if nd.Secondary || nd.Display() != "down" {
		t.Errorf("after down: Secondary %v, Display %q; want false, down", nd.Secondary, nd.Display())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
