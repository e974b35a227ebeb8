package nodes

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// drain returns the changes published so far on ch: it makes a marker
// change (node 0's owner, which must exist) and reads up to it.
func drain(t *testing.T, tab *Table, ch <-chan Change) []Change {
	t.Helper()
	nd, _ := tab.Get(0)
	mark := nd.Owner + 1
	must(t, tab.SetOwner(Admin, 0, mark))
	var out []Change
	deadline := time.After(10 * time.Second)
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed before the marker change")
			}
			if c.Kind == KindOwner && c.Node == 0 && c.New.Owner == mark {
				return out
			}
			out = append(out, c)
		case <-deadline:
			t.Fatal("marker change not delivered")
		}
	}
}

// TestWatchSlowSubscriber makes many changes while one subscriber reads
// nothing: the setters must not block, the fast subscriber must get every
// change at once, and the slow one every change, in order, later.
func TestWatchSlowSubscriber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tab := New(time.Now, Node{Num: 0}, Node{Num: 1}, Node{Num: 2})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		fast, slow := tab.Watch(ctx), tab.Watch(ctx)

		const changes = 3000
		var fastGot []Change
		done := make(chan struct{})
		go func() {
			defer close(done)
			for c := range fast {
				fastGot = append(fastGot, c)
				if len(fastGot) == changes {
					return
				}
			}
		}()
		for i := range changes {
			time.Sleep(time.Millisecond)
			must(t, tab.SetOwner(Admin, i%3, uint32(i+1)))
		}
		// Every setter has returned although slow has not been read.
		<-done
		checkSequence(t, "fast", fastGot, changes)

		var slowGot []Change
		for c := range slow {
			slowGot = append(slowGot, c)
			if len(slowGot) == changes {
				break
			}
		}
		checkSequence(t, "slow", slowGot, changes)
	})
}

// checkSequence checks that got is the n owner changes of
// TestWatchSlowSubscriber, each once and in order: change i made node i%3
// owned by i+1, a millisecond after the one before.
func checkSequence(t *testing.T, who string, got []Change, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%s: %d changes, want %d", who, len(got), n)
	}
	for i, c := range got {
		wantOld := uint32(0)
		if i >= 3 {
			wantOld = uint32(i - 2)
		}
		if c.Kind != KindOwner || c.Node != i%3 || c.New.Owner != uint32(i+1) || c.Old.Owner != wantOld {
			t.Fatalf("%s: change %d is %v node %d owner %d→%d, want owner node %d %d→%d",
				who, i, c.Kind, c.Node, c.Old.Owner, c.New.Owner, i%3, wantOld, i+1)
		}
		if i > 0 && c.Time.Sub(got[i-1].Time) != time.Millisecond {
			t.Fatalf("%s: change %d at %v, change %d at %v", who, i, c.Time, i-1, got[i-1].Time)
		}
	}
}

// TestWatchCancel ends subscriptions that have queued changes nobody reads,
// one that is read, one with nothing queued and one cancelled before it
// began: each goroutine must exit, each channel close, and the table forget
// them. synctest.Test fails if a goroutine is left blocked.
func TestWatchCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tab := New(time.Now, Node{Num: 0})
		unread, cancelUnread := context.WithCancel(t.Context())
		read, cancelRead := context.WithCancel(t.Context())
		gone, cancelGone := context.WithCancel(t.Context())
		cancelGone() // cancelled before Watch
		chUnread, chRead, chGone := tab.Watch(unread), tab.Watch(read), tab.Watch(gone)
		for i := range 100 {
			must(t, tab.SetOwner(Admin, 0, uint32(i+1)))
		}
		if c := <-chRead; c.New.Owner != 1 {
			t.Errorf("first change: owner %d, want 1", c.New.Owner)
		}
		idle, cancelIdle := context.WithCancel(t.Context())
		chIdle := tab.Watch(idle) // subscribed after the changes: nothing queued
		synctest.Wait()
		cancelUnread()
		cancelRead()
		cancelIdle()
		synctest.Wait()
		for name, ch := range map[string]<-chan Change{"unread": chUnread, "read": chRead, "gone": chGone, "idle": chIdle} {
			// A cancelled subscription may still hand over a change or
			// two it was already delivering; then it closes.
			n := 0
			for range ch {
				n++
			}
			if n > 1 {
				t.Errorf("%s: %d changes after cancel, want at most 1", name, n)
			}
		}
		tab.mu.Lock()
		subs := len(tab.subs)
		tab.mu.Unlock()
		if subs != 0 {
			t.Errorf("%d subscribers left after cancel, want 0", subs)
		}
		must(t, tab.SetOwner(Admin, 0, 1000)) // publishing to nobody is fine
	})
}

// TestConcurrent runs setters, readers, reconfigures and subscribers at
// once, for the race detector, and checks each subscriber sees every
// node's changes as a chain: each Old is the previous New.
func TestConcurrent(t *testing.T) {
	tab := New(nil, Node{Num: 0}, Node{Num: 1}, Node{Num: 2}, Node{Num: 3})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const writers, each = 4, 200
	total := writers * each
	var watchers sync.WaitGroup
	for range 3 {
		ch := tab.Watch(ctx)
		watchers.Go(func() {
			last := map[int]Node{}
			for i := range total {
				c := <-ch
				if prev, ok := last[c.Node]; ok && !same(prev, c.Old) {
					t.Errorf("change %d on node %d: Old %+v is not the previous New %+v", i, c.Node, c.Old, prev)
					return
				}
				last[c.Node] = c.New
			}
		})
	}
	var writersWG sync.WaitGroup
	for w := range writers {
		writersWG.Go(func() {
			for i := range each {
				if err := tab.SetOwner(Admin, w, uint32(i+1)); err != nil {
					t.Error(err)
					return
				}
				tab.All()
				tab.Get(w)
				tab.Reconfigure(Node{Num: 0}, Node{Num: 1}, Node{Num: 2}, Node{Num: 3}) // no change
				_ = tab.CanRun(wire.Cred{UID: 5}, w)
			}
		})
	}
	writersWG.Wait()
	watchers.Wait()
}
