package slave

import (
	"context"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// Exit statuses of a job's children, for their ghosts (kids.go).
//
// A child a job forks on the node is its parent's to wait for, not
// bpslave's, so bpslave cannot learn its exit status by waiting. The
// kernel's process connector (netlink NETLINK_CONNECTOR, CN_IDX_PROC:
// CONFIG_PROC_EVENTS, which Debian's kernels have, and root) reports
// every process's exit with its status, as wait would: the slave keeps
// the last exitKeep of them, and the watcher that finds a child gone
// from the job's cgroup takes its status from there, waiting up to
// exitWait for it (the kernel unlinks an exiting task from its cgroup
// just before it announces the exit). Without the connector (not root,
// a kernel without it) a child's ghost exits 0, as before.
const (
	exitKeep = 4096
	exitWait = 100 * time.Millisecond
)

// exitLog is the node's recent process exits.
type exitLog struct {
	mu    sync.Mutex
	st    map[int]exitRec // process (thread group) id → how it ended
	order []exitRec       // what st held, oldest first
	seq   uint64
	more  chan struct{} // closed at the next record
}

type exitRec struct {
	pid int
	seq uint64
	ws  syscall.WaitStatus
}

// openExits listens to the kernel's process exits until ctx ends; nil
// if it cannot (the reason is logged once).
func openExits(ctx context.Context, log *slog.Logger) *exitLog {
	e := &exitLog{st: map[int]exitRec{}, more: make(chan struct{})}
	events, errs, err := listenExits(ctx)
	if err != nil {
		log.Info("children's exit statuses unknown: their ghosts exit 0", "err", err)
		return nil
	}
	go func() {
		for {
			select {
			case ev, ok := <-events:
				if ok {
					if x, isExit := ev.Msg.(*netlink.ExitProcEvent); isExit && x.ProcessPid == x.ProcessTgid {
						e.record(int(x.ProcessTgid), syscall.WaitStatus(x.ExitCode))
					}
					continue
				}
			case err := <-errs:
				log.Debug("process connector", "err", err)
			}
			// The listener ended: lost events (the socket's buffer
			// overflowed under a burst of exits: those children's
			// ghosts exit 0), or ctx. Listen anew.
			if ctx.Err() != nil {
				return
			}
			var err error
			if events, errs, err = listenExits(ctx); err != nil {
				log.Info("children's exit statuses unknown from now on", "err", err)
				return
			}
		}
	}()
	return e
}

// listenExits subscribes to the process connector until ctx ends.
func listenExits(ctx context.Context) (<-chan netlink.ProcEvent, <-chan error, error) {
	events := make(chan netlink.ProcEvent, 256)
	errs := make(chan error, 1)
	if err := netlink.ProcEventMonitor(events, ctx.Done(), errs); err != nil {
		return nil, nil, err
	}
	return events, errs, nil
}

// record notes that pid ended with ws.
func (e *exitLog) record(pid int, ws syscall.WaitStatus) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	r := exitRec{pid: pid, seq: e.seq, ws: ws}
	e.st[pid] = r
	e.order = append(e.order, r)
	if len(e.order) > exitKeep {
		if old := e.order[0]; e.st[old.pid].seq == old.seq {
			delete(e.st, old.pid)
		}
		e.order = e.order[1:]
	}
	close(e.more)
	e.more = make(chan struct{})
}

// forget drops what is known of pid's exit: a new process has the pid.
func (e *exitLog) forget(pid int) {
	if e == nil {
		return
	}
	e.mu.Lock()
	delete(e.st, pid)
	e.mu.Unlock()
}

// status is how pid ended, waiting until until for the kernel's word.
func (e *exitLog) status(pid int, until time.Time) (syscall.WaitStatus, bool) {
	if e == nil {
		return 0, false
	}
	deadline := time.NewTimer(time.Until(until))
	defer deadline.Stop()
	for {
		e.mu.Lock()
		r, ok := e.st[pid]
		more := e.more
		e.mu.Unlock()
		if ok {
			return r.ws, true
		}
		select {
		case <-more:
		case <-deadline.C:
			return 0, false
		}
	}
}
