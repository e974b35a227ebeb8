package link

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/hashicorp/yamux"
)

// Errors a Rendezvous returns from Claim.
var (
	ErrAttachTimeout = errors.New("stdin stream did not attach")
	ErrSessionEnded  = errors.New("session ended")
)

// Rendezvous pairs the stdin stream of a process (wire.OpAttach FD 0)
// with its exec stream on one session. The peer opens both at once,
// without waiting for an answer, and the receiving side serves each
// stream on its own goroutine, so either may arrive first. (The output
// streams go the other way and only when output comes: see Outputs.)
//
// Every slot is bounded in time. A stream nobody expects is closed after
// keep. An exec announces itself with Expect as soon as its header is
// read: from then on its stream waits for it however long its preparation
// takes (a cold node may wait for its program files behind a thousand
// others), and Claim waits at most wait for it if it is still missing.
// The peer writes it right behind the exec stream, so it is late only by
// as long as frames queue on a busy session: wait is WriteTimeout for
// real sessions, not a guess at how fast a loaded peer runs. An exec that
// gave up (Abandon, or a failed Claim) leaves a tombstone for keep, so a
// latecomer is closed at once. Close ends everything with the session,
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
	stream  net.Conn
	full    chan struct{} // closed when the stream arrived
	claimed bool          // an exec expects it
	dead    bool          // the exec gave up: close arrivals
	timer   *time.Timer
}

// NewRendezvous makes a Rendezvous that keeps streams nobody expects (and
// tombstones) for keep, and lets Claim wait for a missing stream for wait.
func NewRendezvous(keep, wait time.Duration) *Rendezvous {
	return &Rendezvous{timeout: keep, wait: wait, done: make(chan struct{}), slots: map[uint64]*slot{}}
}

// get returns id's slot, making one that expires after the timeout.
// r.mu is held.
func (r *Rendezvous) get(id uint64) *slot {
	s := r.slots[id]
	if s == nil {
		s = &slot{full: make(chan struct{})}
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
	s.closeStream()
}

// Deliver hands c, the stdin stream of exec id, to the rendezvous. A
// duplicate, or a stream for an exec that gave up, is closed.
func (r *Rendezvous) Deliver(id uint64, c net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return
	}
	s := r.get(id)
	if s.dead || s.stream != nil {
		c.Close()
		return
	}
	s.stream = c
	close(s.full)
}

// Expect announces exec id: its stream, arrived or to come, is kept for
// it until it claims or abandons it. A second Expect of a live id reports
// false (the id is taken, or was used and given up).
func (r *Rendezvous) Expect(id uint64) bool {
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
	return true
}

// Claim waits up to wait for id's stream and takes it. An exec that did
// not Expect first is expected now.
func (r *Rendezvous) Claim(id uint64) (net.Conn, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrSessionEnded
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
			return s.stream, nil
		}
		err = ErrSessionEnded
	default:
	}
	r.bury(id, s)
	return nil, err
}

// Abandon marks id's exec as failed: its stream, present or to come, is
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
	s.closeStream()
	if r.closed || r.slots[id] != s {
		return
	}
	s.dead = true
	s.timer.Stop()
	s.timer = time.AfterFunc(r.timeout, func() { r.expire(id, s) })
}

// Close ends the rendezvous with its session: waiting execs give up and
// streams nobody claimed are closed. A stream an exec expects is left to
// it (the session's end closes it).
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
			s.closeStream()
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

func (s *slot) closeStream() {
	if s.stream != nil {
		s.stream.Close()
		s.stream = nil
	}
}

// Outputs takes the output streams a peer opens for the processes of one
// session: the stdout and stderr streams of a process are opened by the
// side that has the output (the node towards the master, the master
// towards its client), and only when output first comes, so a silent
// process costs no stream. The process's final Result names the streams
// that were opened (wire.Result.Opened), and they are opened before it is
// written: the receiver waits for exactly those, briefly, and copies them
// to the end before it acts on the Result.
//
// An exec registers with Expect before the peer can know its id. A stream
// is taken (Take) only as an OpAttach for FD 1 or 2 of a registered exec,
// each FD once, and not after the Result excluded it or the exec ended;
// anything else is refused.
type Outputs struct {
	mu   sync.Mutex
	outs map[uint64]*Output
}

// OpenOutput is the sending side of Outputs: it opens the stream that
// carries output fd (1 or 2) of exec id to the peer, when the first
// output comes.
func OpenOutput(mux *yamux.Session, id uint64, fd int) (net.Conn, error) {
	c, err := mux.OpenStream()
	if err != nil {
		return nil, err
	}
	if err := wire.Write(c, wire.Header{Op: wire.OpAttach, Attach: &wire.Attach{ID: id, FD: fd}}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Output is one exec's registration with Outputs.
type Output struct {
	relay  func(fd int, c net.Conn)
	shut   [2]bool          // under Outputs.mu: that FD takes no more streams
	got    [2]chan struct{} // closed when that FD's stream was taken
	copies sync.WaitGroup   // relays running
}

// Expect registers exec id: each output stream it takes is handed to
// relay, on the goroutine that took it; relay copies it and closes it.
func (r *Outputs) Expect(id uint64, relay func(fd int, c net.Conn)) *Output {
	o := &Output{relay: relay, got: [2]chan struct{}{make(chan struct{}), make(chan struct{})}}
	r.mu.Lock()
	if r.outs == nil {
		r.outs = map[uint64]*Output{}
	}
	r.outs[id] = o
	r.mu.Unlock()
	return o
}

// Take reads the header of stream st, which the peer opened, within
// timeout and hands st to its exec's relay, returning when the relay
// does. A stream no exec takes is refused: refused (if not nil) is told
// why, then st is closed and what the peer may still send is read and
// dropped for up to timeout, so it never blocks on it.
func (r *Outputs) Take(st net.Conn, timeout time.Duration, refused func(error)) {
	st.SetReadDeadline(time.Now().Add(timeout))
	var h wire.Header
	err := wire.Read(st, &h)
	st.SetReadDeadline(time.Time{})
	r.TakeAfter(st, h, err, timeout, refused)
}

// TakeAfter is Take for a stream whose header the caller has read (h,
// or the error reading it).
func (r *Outputs) TakeAfter(st net.Conn, h wire.Header, err error, timeout time.Duration, refused func(error)) {
	switch {
	case err != nil:
	case h.Op != wire.OpAttach || h.Attach == nil:
		err = fmt.Errorf("op %q", h.Op)
	case h.Attach.FD != 1 && h.Attach.FD != 2:
		err = fmt.Errorf("attach to fd %d", h.Attach.FD)
	default:
		o := r.claim(h.Attach.ID, h.Attach.FD)
		if o == nil {
			err = fmt.Errorf("attach to fd %d of exec %d: not a running exec, or attached already", h.Attach.FD, h.Attach.ID)
			break
		}
		defer o.copies.Done()
		o.relay(h.Attach.FD, st)
		return
	}
	if refused != nil {
		refused(err)
	}
	st.Close()
	st.SetReadDeadline(time.Now().Add(timeout))
	io.Copy(io.Discard, st)
}

// claim marks fd of exec id taken and returns its Output, or nil.
func (r *Outputs) claim(id uint64, fd int) *Output {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.outs[id]
	if o == nil || o.shut[fd-1] {
		return nil
	}
	o.shut[fd-1] = true
	o.copies.Add(1)
	close(o.got[fd-1])
	return o
}

// Finish ends exec id's registration once its Result is in: the streams
// opened names (wire.Result.Opened bits) are awaited up to wait (or until
// done closes), no other is taken from now on, and Finish returns when
// every relay has finished copying — a slow reader of the output holds
// it, by design. A named stream that did not come is an error. Finish
// with opened 0 and wait 0 abandons the exec (no Result came): only the
// relays already running are waited for.
func (r *Outputs) Finish(id uint64, o *Output, opened uint8, wait time.Duration, done <-chan struct{}) error {
	r.mu.Lock()
	for i := range 2 {
		if opened&wire.OpenedFD(i+1) == 0 {
			o.shut[i] = true
		}
	}
	r.mu.Unlock()
	var timeout <-chan time.Time
	var missing []int
	for i := range 2 {
		if opened&wire.OpenedFD(i+1) == 0 {
			continue
		}
		if timeout == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-o.got[i]:
		case <-timeout:
		case <-done:
		}
		select {
		case <-o.got[i]:
		default:
			missing = append(missing, i+1)
		}
	}
	r.mu.Lock()
	if r.outs[id] == o {
		delete(r.outs, id)
	}
	o.shut = [2]bool{true, true}
	r.mu.Unlock()
	o.copies.Wait()
	if len(missing) > 0 {
		return fmt.Errorf("%w (fd %v)", ErrOutputMissing, missing)
	}
	return nil
}

// ErrOutputMissing is Finish's error for a stream the Result named that
// did not come.
var ErrOutputMissing = errors.New("an output stream the result names did not arrive")

// Len reports how many execs are registered.
func (r *Outputs) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.outs)
}
