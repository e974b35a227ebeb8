package master

import (
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/hashicorp/yamux"
)

// Limits on the client socket, as sshd's MaxSessions and LoginGraceTime
// are on its port: a local user can open connections as fast as the
// kernel allows, and each held connection costs the master a descriptor
// and a yamux session (~27 KiB). Before these, one user holding 22 500
// idle connections took bpmaster from 36 to 605 MB and out of
// descriptors.
const (
	// DefaultConnsPerUID is how many client connections one non-root uid
	// may hold at once; root has no cap. A bpsh, bpstat or bpcp holds one
	// for its whole run, so this is that many commands at once — room
	// for mpirun's concurrent remote-shell starts (OpenMPI runs up to
	// 128 at a time).
	DefaultConnsPerUID = 256
	// FirstRequest is how long a client connection may stay open without
	// opening its first stream.
	FirstRequest = 10 * time.Second
	// refuseLinger bounds how long a refused connection is kept for its
	// refusal to be read.
	refuseLinger = 250 * time.Millisecond
	// idleFree is how long the master waits, once its last client has
	// gone, before handing freed memory back to the kernel; freeEvery is
	// the least time between two such returns.
	idleFree  = 3 * time.Second
	freeEvery = 10 * time.Second
)

// RequestBudget is how many bytes of requests one non-root uid may
// have being read at once (wire.Budget): four of the largest frames,
// thousands of ordinary ones. Requests over it are refused; before it,
// streams that each announced a 4 MiB frame and stalled took the master
// from 21 MB to 1.4 GB for 100 of them.
const RequestBudget = 4 * wire.MaxFrame

// conns counts the client connections held, per uid and in all, and
// returns freed memory to the kernel once a burst of them is over. It
// also keeps each uid's request budget.
type conns struct {
	max int // per non-root uid; 0 = DefaultConnsPerUID

	mu       sync.Mutex
	budgets  map[uint32]*wire.Budget
	byUID    map[uint32]int
	total    int
	lastFree time.Time
	timer    *time.Timer
}

// budget is uid's request budget; nil (none) for root.
func (c *conns) budget(uid uint32) *wire.Budget {
	if uid == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.budgets[uid]
	if b == nil {
		if c.budgets == nil {
			c.budgets = map[uint32]*wire.Budget{}
		}
		b = &wire.Budget{Max: RequestBudget}
		c.budgets[uid] = b
	}
	return b
}

// take counts a connection of uid; ok is false (and nothing is counted)
// when uid holds its cap already.
func (c *conns) take(uid uint32) (limit int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	limit = c.max
	if limit <= 0 {
		limit = DefaultConnsPerUID
	}
	if uid != 0 && c.byUID[uid] >= limit {
		return limit, false
	}
	if c.byUID == nil {
		c.byUID = map[uint32]int{}
	}
	c.byUID[uid]++
	c.total++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	return limit, true
}

// release uncounts a connection of uid. When the last connection goes,
// the memory its burst used is returned to the kernel after idleFree:
// the Go runtime would keep it for minutes (its scavenger is gentle), so
// a burst of 5 000 connections left the master at three times its idle
// size.
func (c *conns) release(uid uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byUID[uid]--; c.byUID[uid] <= 0 {
		delete(c.byUID, uid)
	}
	c.total--
	if c.total > 0 || c.timer != nil {
		return
	}
	wait := max(idleFree, time.Until(c.lastFree.Add(freeEvery)))
	c.timer = time.AfterFunc(wait, func() {
		c.mu.Lock()
		if c.total > 0 || c.timer == nil {
			c.mu.Unlock()
			return
		}
		c.timer, c.lastFree = nil, time.Now()
		c.mu.Unlock()
		debug.FreeOSMemory()
	})
}

// refuse tells a client why its connection is not served (wire.OpRefuse)
// and closes it once the client has read that, or after refuseLinger.
func refuse(c net.Conn, reason string) {
	mux, err := yamux.Server(c, link.MuxConfig())
	if err != nil {
		c.Close()
		return
	}
	defer mux.Close()
	st, err := mux.OpenStream()
	if err != nil {
		return
	}
	if err := wire.Write(st, wire.Header{Op: wire.OpRefuse, Refuse: &wire.Refuse{Reason: reason}}); err != nil {
		return
	}
	t := time.NewTimer(refuseLinger)
	defer t.Stop()
	select {
	case <-mux.CloseChan():
	case <-t.C:
	}
}

func tooMany(uid uint32, limit int) string {
	return fmt.Sprintf("too many connections for uid %d (%d)", uid, limit)
}
