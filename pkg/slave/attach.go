package slave

import (
	"errors"
	"net"
	"sync"
	"time"
)

// attachTimeout bounds how long an exec waits for its stdio streams, and
// how long streams wait for their exec.
const attachTimeout = 10 * time.Second

var (
	errAttachTimeout = errors.New("stdio streams did not attach")
	errSessionEnded  = errors.New("session ended")
)

// rendezvous pairs OpAttach streams with the exec of the same ID; either
// may arrive first. Every slot is bounded in time: streams nobody claims
// are closed after the timeout, and an exec that gave up leaves a
// tombstone for as long, so latecomers are closed at once.
type rendezvous struct {
	timeout time.Duration
	done    chan struct{} // closed by close: the session ended

	mu     sync.Mutex
	slots  map[uint64]*slot
	closed bool
}

type slot struct {
	streams [3]net.Conn
	n       int
	full    chan struct{} // closed when all three arrived
	claimed bool          // an exec is waiting for it
	dead    bool          // the exec gave up: close arrivals
	timer   *time.Timer
}

func newRendezvous(timeout time.Duration) *rendezvous {
	return &rendezvous{timeout: timeout, done: make(chan struct{}), slots: map[uint64]*slot{}}
}

// get returns id's slot, making one that expires after the timeout.
// r.mu is held.
func (r *rendezvous) get(id uint64) *slot {
	s := r.slots[id]
	if s == nil {
		s = &slot{full: make(chan struct{})}
		s.timer = time.AfterFunc(r.timeout, func() { r.expire(id, s) })
		r.slots[id] = s
	}
	return s
}

// expire drops an unclaimed slot or a tombstone.
func (r *rendezvous) expire(id uint64, s *slot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.slots[id] != s || (s.claimed && !s.dead) {
		return
	}
	delete(r.slots, id)
	s.closeStreams()
}

// deliver hands stream c, carrying file descriptor fd of exec id, to the
// rendezvous. Duplicates, bad descriptors and streams for an exec that
// gave up are closed.
func (r *rendezvous) deliver(id uint64, fd int, c net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || fd < 0 || fd > 2 {
		c.Close()
		return
	}
	s := r.get(id)
	if s.dead || s.streams[fd] != nil {
		c.Close()
		return
	}
	s.streams[fd] = c
	s.n++
	if s.n == 3 {
		close(s.full)
	}
}

// claim waits up to the timeout for id's three streams and takes them.
func (r *rendezvous) claim(id uint64) ([3]net.Conn, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return [3]net.Conn{}, errSessionEnded
	}
	s := r.get(id)
	s.claimed = true
	s.timer.Stop()
	r.mu.Unlock()

	t := time.NewTimer(r.timeout)
	defer t.Stop()
	var err error
	select {
	case <-s.full:
	case <-t.C:
		err = errAttachTimeout
	case <-r.done:
		err = errSessionEnded
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-s.full: // arrived after all, possibly racing the timer
		if r.slots[id] == s {
			delete(r.slots, id)
		}
		if !r.closed {
			return s.streams, nil
		}
		err = errSessionEnded
	default:
	}
	r.bury(id, s)
	return [3]net.Conn{}, err
}

// abandon marks id's exec as failed: its streams, present or to come, are
// closed.
func (r *rendezvous) abandon(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.bury(id, r.get(id))
}

// bury turns s into a tombstone that expires after the timeout. r.mu is held.
func (r *rendezvous) bury(id uint64, s *slot) {
	s.closeStreams()
	if r.closed || r.slots[id] != s {
		return
	}
	s.dead = true
	s.timer.Stop()
	s.timer = time.AfterFunc(r.timeout, func() { r.expire(id, s) })
}

// close ends the rendezvous with its session: waiting execs give up and
// unclaimed streams are closed.
func (r *rendezvous) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	close(r.done)
	for id, s := range r.slots {
		s.timer.Stop()
		if !s.claimed {
			s.closeStreams()
		}
		delete(r.slots, id)
	}
}

// pending reports how many slots (waiting streams or tombstones) are held.
func (r *rendezvous) pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.slots)
}

func (s *slot) closeStreams() {
	for i, c := range s.streams {
		if c != nil {
			c.Close()
			s.streams[i] = nil
		}
	}
}
