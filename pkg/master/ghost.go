package master

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/procstat"
)

// stopPoll is how often the master looks whether a client with remote
// processes was stopped.
const stopPoll = 100 * time.Millisecond

// ghostOf records r as one of c's remote processes until the returned
// func runs, and has the master follow c's stops (followStops) while c
// has any.
func (m *Master) ghostOf(ctx context.Context, c *client, r *relay) (done func()) {
	c.mu.Lock()
	c.procs[r.id] = r
	if !c.watching && !c.who.remote { // a client on a node has no pid here to look at
		c.watching = true
		go m.followStops(ctx, c)
	}
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.procs, r.id)
		c.mu.Unlock()
	}
}

// followStops makes a SIGSTOP sent straight to a ghost (bpsh, or any
// program on pkg/bproc) reach its remote processes, as it did under
// BProc. The kernel stops a process on SIGSTOP without running any of its
// code, and tells only its parent and tracers, so the master looks
// instead: every stopPoll while c has remote processes, it reads the
// client's state, and when the client has newly stopped ('T'; 't', held
// by a debugger, is left alone) it sends each of them SIGSTOP. Resuming
// needs nothing here: SIGCONT always reaches the client, which forwards
// it, and the SIGCONT it forwards tells the master that a stop after it
// is a new one, even within the same stopPoll. A SIGCONT that comes
// between the look and the SIGSTOP is caught by a second look after it,
// which sends SIGCONT itself.
//
// The cost is one pread of the client's /proc/PID/stat, kept open, per
// stopPoll (~4 µs here; 1000 clients with jobs running at once cost ~4 %
// of a core); the latency of a SIGSTOP, up to stopPoll. The open file also
// keeps a recycled pid from being mistaken for the client: once the
// client is gone the reads fail. The follower ends when c has no remote
// processes left, or its connection ends.
func (m *Master) followStops(ctx context.Context, c *client) {
	t := time.NewTicker(stopPoll)
	defer t.Stop()
	st, err := openStat(c.who.pid)
	if err != nil { // the client is gone: its relays end by themselves
		m.log.Debug("cannot follow the client's stops", "pid", c.who.pid, "err", err)
	}
	defer st.Close()
	stopped := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		if len(c.procs) == 0 {
			c.watching = false // the next exec starts another
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if c.resumed.Swap(false) {
			stopped = false // a stop now is a new one, however soon
		}
		now := st.stopped()
		if now && !stopped {
			rs := c.running()
			m.log.Debug("client stopped: stopping its remote processes", "pid", c.who.pid, "procs", len(rs))
			signalAll(rs, syscall.SIGSTOP)
			if now = st.stopped(); !now {
				signalAll(rs, syscall.SIGCONT)
			}
		}
		stopped = now
	}
}

// running lists c's remote processes.
func (c *client) running() []*relay {
	c.mu.Lock()
	defer c.mu.Unlock()
	rs := make([]*relay, 0, len(c.procs))
	for _, r := range c.procs {
		rs = append(rs, r)
	}
	return rs
}

func signalAll(rs []*relay, sig syscall.Signal) {
	for _, r := range rs {
		r.signal(int(sig)) // an error: the process is ending anyway
	}
}

// procStat is a process's /proc/PID/stat, open; nil when it could not be
// opened (then the process is never stopped).
type procStat struct {
	f   *os.File
	buf [1024]byte
}

func openStat(pid int) (*procStat, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	return &procStat{f: f}, nil
}

// stopped reports whether the process is stopped by a signal (state T).
// Each read at offset 0 of a /proc stat file is a fresh snapshot.
func (p *procStat) stopped() bool {
	if p == nil {
		return false
	}
	n, err := syscall.Pread(int(p.f.Fd()), p.buf[:], 0)
	if err != nil || n <= 0 {
		return false
	}
	st, err := procstat.Parse(p.buf[:n])
	return err == nil && st.State == 'T'
}

func (p *procStat) Close() error {
	if p == nil {
		return nil
	}
	return p.f.Close()
}
