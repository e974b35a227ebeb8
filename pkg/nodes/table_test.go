package nodes

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestNew(t *testing.T) {
	start := time.Date(2004, 12, 17, 1, 41, 12, 0, time.UTC)
	clk := &fakeClock{now: start}
	tab := New(clk.Now,
		Node{Num: 2, MACs: []string{"00:11:22:33:44:02"}, Addr: addr("10.0.0.102"), State: Up, Owner: 7, Mode: 0},
		Node{Num: 0, MACs: []string{"00:11:22:33:44:00"}, Addr: addr("10.0.0.100")},
		Node{Num: -1, MACs: []string{"ignored"}},
		Node{Num: 0, MACs: []string{"00:11:22:33:44:aa"}, Addr: addr("10.0.0.200")}, // later wins
	)
	want := []Node{
		{Num: 0, MACs: []string{"00:11:22:33:44:aa"}, Addr: addr("10.0.0.200"), State: Down, Since: start, Mode: 0111},
		{Num: 1, State: Down, Since: start, Mode: 0111},
		{Num: 2, MACs: []string{"00:11:22:33:44:02"}, Addr: addr("10.0.0.102"), State: Down, Since: start, Mode: 0111},
	}
	if got := tab.Count(); got != len(want) {
		t.Fatalf("Count() = %d, want %d", got, len(want))
	}
	for i, w := range want {
		got, ok := tab.Get(i)
		if !ok || !same(got, w) {
			t.Errorf("Get(%d) = %+v, %v; want %+v", i, got, ok, w)
		}
	}
	if all := tab.All(); !slices.EqualFunc(all, want, same) {
		t.Errorf("All() = %+v, want %+v", all, want)
	}
	for _, n := range []int{-1, 3, 100} {
		if got, ok := tab.Get(n); ok {
			t.Errorf("Get(%d) = %+v, true; want false", n, got)
		}
	}
	if got := New(nil).Count(); got != 0 {
		t.Errorf("New(nil).Count() = %d, want 0", got)
	}
}

// TestSnapshotsAreCopies changes what Get, All and a Change hand out and
// checks the table does not notice.
func TestSnapshotsAreCopies(t *testing.T) {
	macs := []string{"00:11:22:33:44:00"}
	tab := New(nil, Node{Num: 0, MACs: macs})
	macs[0] = "caller changed its slice"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := tab.Watch(ctx)

	g, _ := tab.Get(0)
	g.MACs[0] = "changed Get"
	a := tab.All()
	a[0].MACs[0] = "changed All"
	a[0].State = Up
	tab.Reconfigure(Node{Num: 0, MACs: []string{"00:11:22:33:44:01"}})
	c := drain(t, tab, ch)
	c[0].New.MACs[0] = "changed Change"

	got, _ := tab.Get(0)
	if want := []string{"00:11:22:33:44:01"}; !slices.Equal(got.MACs, want) || got.State != Down {
		t.Errorf("Get(0) = %v %s, want %v down", got.MACs, got.State, want)
	}
}

func TestSetStateSince(t *testing.T) {
	start := time.Date(2004, 12, 17, 1, 41, 12, 0, time.UTC)
	clk := &fakeClock{now: start}
	tab := New(clk.Now, Node{Num: 0})
	clk.Advance(time.Minute)
	must(t, tab.SetState(System, 0, Boot))
	clk.Advance(time.Minute)
	must(t, tab.SetOwner(Admin, 0, 5)) // not a state change: Since stays
	got, _ := tab.Get(0)
	if want := start.Add(time.Minute); !got.Since.Equal(want) {
		t.Errorf("Since = %v, want %v", got.Since, want)
	}
}

func TestReconfigure(t *testing.T) {
	start := time.Date(2004, 12, 17, 1, 41, 12, 0, time.UTC)
	clk := &fakeClock{now: start}
	tab := New(clk.Now,
		Node{Num: 0, Addr: addr("10.0.0.100")},
		Node{Num: 1, Addr: addr("10.0.0.101")},
		Node{Num: 2, Addr: addr("10.0.0.102")},
		Node{Num: 3, Addr: addr("10.0.0.103")},
	)
	must(t, tab.SetState(System, 1, Boot))
	must(t, tab.SetState(System, 1, Up))
	must(t, tab.SetOwner(Admin, 1, 1000))
	must(t, tab.SetMode(Admin, 1, 0100))
	must(t, tab.SetState(System, 2, Boot))
	must(t, tab.SetState(System, 3, Boot))
	upSince := start
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := tab.Watch(ctx)
	clk.Advance(time.Hour)

	// Shrink to 3 nodes: 1 keeps everything, 2 is readdressed, 3 goes.
	tab.Reconfigure(
		Node{Num: 0, Addr: addr("10.0.0.100")},
		Node{Num: 1, Addr: addr("10.0.0.101"), State: Error, Owner: 9}, // State, Owner ignored
		Node{Num: 2, Addr: addr("10.0.0.202"), MACs: []string{"00:11:22:33:44:02"}},
	)
	got := drain(t, tab, ch)
	now := start.Add(time.Hour)
	want := []Change{
		{Kind: KindConfig, Node: 2,
			Old:  Node{Num: 2, Addr: addr("10.0.0.102"), State: Boot, Since: start, Mode: 0111},
			New:  Node{Num: 2, Addr: addr("10.0.0.202"), MACs: []string{"00:11:22:33:44:02"}, State: Boot, Since: start, Mode: 0111},
			Time: now},
		{Kind: KindRemoved, Node: 3,
			Old: Node{Num: 3, Addr: addr("10.0.0.103"), State: Boot, Since: start, Mode: 0111},
			New: Node{Num: 3}, Time: now},
	}
	checkChanges(t, "shrink", got, want)
	n1, _ := tab.Get(1)
	if n1.State != Up || !n1.Since.Equal(upSince) || n1.Owner != 1000 || n1.Mode != 0100 {
		t.Errorf("node 1 after reconfigure = %+v, want up since %v, owner 1000, mode 0100", n1, upSince)
	}
	if tab.Count() != 3 {
		t.Errorf("Count() = %d, want 3", tab.Count())
	}

	// Grow to 5: 3 and 4 are new and down, whatever 3 was before.
	clk.Advance(time.Hour)
	tab.Reconfigure(Node{Num: 0}, Node{Num: 1}, Node{Num: 4, Addr: addr("10.0.0.104")})
	got = drain(t, tab, ch)
	now = now.Add(time.Hour)
	want = []Change{
		{Kind: KindConfig, Node: 0,
			Old: Node{Num: 0, Addr: addr("10.0.0.100"), Since: start, Mode: 0111, Owner: 1},
			New: Node{Num: 0, Since: start, Mode: 0111, Owner: 1}, Time: now},
		{Kind: KindConfig, Node: 1,
			Old: Node{Num: 1, Addr: addr("10.0.0.101"), State: Up, Since: start, Owner: 1000, Mode: 0100},
			New: Node{Num: 1, State: Up, Since: start, Owner: 1000, Mode: 0100}, Time: now},
		{Kind: KindConfig, Node: 2,
			Old: Node{Num: 2, Addr: addr("10.0.0.202"), MACs: []string{"00:11:22:33:44:02"}, State: Boot, Since: start, Mode: 0111},
			New: Node{Num: 2, State: Boot, Since: start, Mode: 0111}, Time: now},
		{Kind: KindAdded, Node: 3, Old: Node{Num: 3}, New: Node{Num: 3, State: Down, Since: now, Mode: 0111}, Time: now},
		{Kind: KindAdded, Node: 4, Old: Node{Num: 4},
			New: Node{Num: 4, Addr: addr("10.0.0.104"), State: Down, Since: now, Mode: 0111}, Time: now},
	}
	checkChanges(t, "grow", got, want)

	// The same list again changes nothing.
	tab.Reconfigure(Node{Num: 0}, Node{Num: 1}, Node{Num: 4, Addr: addr("10.0.0.104")})
	checkChanges(t, "same", drain(t, tab, ch), nil)
}

func checkChanges(t *testing.T, name string, got, want []Change) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d changes %+v, want %d %+v", name, len(got), got, len(want), want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Kind != w.Kind || g.Node != w.Node || !same(g.Old, w.Old) || !same(g.New, w.New) || !g.Time.Equal(w.Time) {
			t.Errorf("%s: change %d = %+v, want %+v", name, i, g, w)
		}
	}
}

func TestZeroTable(t *testing.T) {
	var tab Table
	if tab.Count() != 0 || len(tab.All()) != 0 {
		t.Fatalf("zero Table has %d nodes", tab.Count())
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := tab.Watch(ctx)
	tab.Reconfigure(Node{Num: 0})
	if c := <-ch; c.Kind != KindAdded || c.New.State != Down || c.New.Mode != DefaultMode || c.New.Since.IsZero() {
		t.Errorf("first change on a zero Table: %+v", c)
	}
}
