package nodes

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Kind is what a Change changed.
type Kind uint8

// The kinds of change.
const (
	KindState     Kind = iota + 1 // SetState (Since too; Secondary cleared on down)
	KindOwner                     // SetOwner
	KindGroup                     // SetGroup
	KindMode                      // SetMode
	KindSecondary                 // SetSecondary
	KindAdded                     // Reconfigure added the node: Old holds only Num
	KindRemoved                   // Reconfigure removed the node: New holds only Num
	KindConfig                    // Reconfigure changed the node's MACs or address
)

func (k Kind) String() string {
	switch k {
	case KindState:
		return "state"
	case KindOwner:
		return "owner"
	case KindGroup:
		return "group"
	case KindMode:
		return "mode"
	case KindSecondary:
		return "secondary"
	case KindAdded:
		return "added"
	case KindRemoved:
		return "removed"
	case KindConfig:
		return "config"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Change is one change to one node: what it was, what it is, and when.
// Old and New are the subscriber's own copies.
type Change struct {
	Kind     Kind
	Node     int
	Old, New Node
	Time     time.Time
}

// Watch subscribes to every change the table makes from now on, delivered
// in order on the returned channel with none dropped. The subscription
// holds a goroutine and a queue that grows while the reader lags; it ends
// when ctx is done: the goroutine drops what is still queued, closes the
// channel and exits, whether or not anyone is reading.
func (t *Table) Watch(ctx context.Context) <-chan Change {
	s := &subscriber{wake: make(chan struct{}, 1)}
	out := make(chan Change)
	t.mu.Lock()
	if t.subs == nil {
		t.subs = map[*subscriber]struct{}{}
	}
	t.subs[s] = struct{}{}
	t.mu.Unlock()
	go func() {
		defer close(out)
		defer func() {
			t.mu.Lock()
			delete(t.subs, s)
			t.mu.Unlock()
		}()
		s.run(ctx, out)
	}()
	return out
}

// publish queues c for every subscriber; t.mu is held, which is what
// orders the changes. Queuing never blocks.
func (t *Table) publish(c Change) {
	for s := range t.subs {
		own := c
		own.Old, own.New = c.Old.clone(), c.New.clone()
		s.push(own)
	}
}

// subscriber is one Watch: its queue and the signal that it grew.
type subscriber struct {
	mu    sync.Mutex
	queue []Change
	wake  chan struct{} // buffered 1: "the queue may be non-empty"
}

func (s *subscriber) push(c Change) {
	s.mu.Lock()
	s.queue = append(s.queue, c)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// take empties the queue and returns what was in it.
func (s *subscriber) take() []Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue = nil
	return q
}

// run delivers queued changes to out until ctx is done.
func (s *subscriber) run(ctx context.Context, out chan<- Change) {
	for {
		select {
		case <-s.wake:
		case <-ctx.Done():
			return
		}
		for _, c := range s.take() {
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
	}
}
