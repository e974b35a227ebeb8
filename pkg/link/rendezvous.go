package link

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Errors a Rendezvous returns from Claim.
var (
	ErrAttachTimeout = errors.New("stdio streams did not attach")
	ErrSessionEnded  = errors.New("session ended")
)

// Rendezvous pairs the stdio streams of a process (wire.OpAttach, FD 0, 1
// and 2; on the node hop only FD 0, the node opening its output streams
// itself) with its exec stream on one session. The peer opens them all at
// once, without waiting for an answer, and the receiving side serves each
// stream on its own goroutine, so either may arrive first.
//
// Every slot is bounded in time. Streams nobody expects are closed after
// keep. An exec announces itself with Expect as soon as its header is
// read: from then on its streams wait for it however long its preparation
// takes (a cold node may wait for its program files behind a thousand
// others), and Claim waits at most wait for the ones still missing. The
// peer writes them right behind the exec stream, so they are late only by
// as long as frames queue on a busy session: wait is WriteTimeout for
// real sessions, not a guess at how fast a loaded peer runs. An exec that
// gave up (Abandon, or a failed Claim) leaves a tombstone for keep, so
// latecomers are closed at once. Close ends everything with the session,
// which is what ends the wait of a peer that went away.
type Rendezvous struct {
	timeout time.Duration // keep
	wait    time.Duration
	done    chan struct{} // closed by Close: the session ended

	mu     sync.Mutex
	slots  map[uint64]*slot
	closed bool
}

type slot struct {
	streams [3]net.Conn
	want    [3]bool       // the descriptors the exec has streams for
	full    chan struct{} // closed when every wanted stream arrived
	claimed bool          // an exec expects it
	dead    bool          // the exec gave up: close arrivals
	timer   *time.Timer
}

// check closes s.full once every wanted stream is there. r.mu is held.
func (s *slot) check() {
	select {
	case <-s.full:
		return
	default:
	}
	for fd, w := range s.want {
		if w && s.streams[fd] == nil {
			return
		}
	}
	close(s.full)
}

// NewRendezvous makes a Rendezvous that keeps streams nobody expects (and
// tombstones) for keep, and lets Claim wait for missing streams for wait.
func NewRendezvous(keep, wait time.Duration) *Rendezvous {
	return &Rendezvous{timeout: keep, wait: wait, done: make(chan struct{}), slots: map[uint64]*slot{}}
}

// get returns id's slot, making one that expires after the timeout.
// r.mu is held.
func (r *Rendezvous) get(id uint64) *slot {
	s := r.slots[id]
	if s == nil {
		s = &slot{full: make(chan struct{}), want: AllFDs}
		s.timer = time.AfterFunc(r.timeout, func() { r.expire(id, s) })
		r.slots[id] = s
	}
	return s
}

// expire drops an unclaimed slot or a tombstone.
func (r *Rendezvous) expire(id uint64, s *slot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.slots[id] != s || (s.claimed && !s.dead) {
		return
	}
	delete(r.slots, id)
	s.closeStreams()
}

// Deliver hands stream c, carrying file descriptor fd of exec id, to the
// rendezvous. Duplicates, bad descriptors and streams for an exec that
// gave up are closed.
func (r *Rendezvous) Deliver(id uint64, fd int, c net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || fd < 0 || fd > 2 {
		c.Close()
		return
	}
	s := r.get(id)
	if s.dead || s.streams[fd] != nil || (s.claimed && !s.want[fd]) {
		c.Close()
		return
	}
	s.streams[fd] = c
	s.check()
}

// AllFDs wants a stream for each of stdin, stdout and stderr.
var AllFDs = [3]bool{true, true, true}

// Expect announces exec id and which of its descriptors have streams
// (AllFDs, or without stdin when the process reads /dev/null): those,
// arrived or to come, are kept for it until it claims or abandons them;
// others are closed. A second Expect of a live id reports false (the id
// is taken, or was used and given up).
func (r *Rendezvous) Expect(id uint64, want [3]bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	s := r.get(id)
	if s.claimed || s.dead {
		return false
	}
	s.claimed = true
	s.timer.Stop()
	s.want = want
	for fd, c := range s.streams {
		if c != nil && !want[fd] {
			c.Close()
			s.streams[fd] = nil
		}
	}
	s.check()
	return true
}

// Claim waits up to wait for id's wanted streams and takes them (the
// others are nil). An exec that did not Expect first is expected now,
// with all three.
func (r *Rendezvous) Claim(id uint64) ([3]net.Conn, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return [3]net.Conn{}, ErrSessionEnded
	}
	s := r.get(id)
	s.claimed = true
	s.timer.Stop()
	r.mu.Unlock()

	t := time.NewTimer(r.wait)
	defer t.Stop()
	var err error
	select {
	case <-s.full:
	case <-t.C:
		err = ErrAttachTimeout
	case <-r.done:
		err = ErrSessionEnded
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
		err = ErrSessionEnded
	default:
	}
	r.bury(id, s)
	return [3]net.Conn{}, err
}

// Abandon marks id's exec as failed: its streams, present or to come, are
// closed.
func (r *Rendezvous) Abandon(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.bury(id, r.get(id))
}

// bury turns s into a tombstone that expires after the timeout. r.mu is held.
func (r *Rendezvous) bury(id uint64, s *slot) {
	s.closeStreams()
	if r.closed || r.slots[id] != s {
		return
	}
	s.dead = true
	s.timer.Stop()
	s.timer = time.AfterFunc(r.timeout, func() { r.expire(id, s) })
}

// Close ends the rendezvous with its session: waiting execs give up and
// streams nobody claimed are closed. Streams an exec expects are left to
// it (the session's end closes them).
func (r *Rendezvous) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	close(r.done)
	for id, s := range r.slots {
		s.timer.Stop()
		if !s.claimed || s.dead {
			s.closeStreams()
		}
		delete(r.slots, id)
	}
}

// Pending reports how many slots (waiting streams or tombstones) are held.
func (r *Rendezvous) Pending() int {
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
