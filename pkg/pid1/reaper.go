package pid1

import (
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Reaper is the one place that waits for child processes. PID 1 inherits
// every orphan of the node, and a wait4(-1) anywhere else would steal the
// exit status that exec.Cmd.Wait is waiting for; so Reaper alone calls
// wait4, on each SIGCHLD, and hands each status to whoever started that
// pid through Start. Statuses of pids nobody started (orphans) are
// dropped after logging. Never call Wait on a Cmd started by Start.
type Reaper struct {
	log     *slog.Logger
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
	sig     chan os.Signal
	done    chan struct{}
	stopped chan struct{}
	// Orphans counts reaped processes nobody started through Start.
	orphans int
}

// NewReaper starts reaping. Stop it with Stop.
func NewReaper(log *slog.Logger) *Reaper {
	r := &Reaper{
		log:     log,
		waiters: map[int]chan unix.WaitStatus{},
		sig:     make(chan os.Signal, 1),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	signal.Notify(r.sig, syscall.SIGCHLD)
	go r.loop()
	return r
}

// Start starts cmd and returns a channel that receives its exit status
// once. cmd's stdio must be nil or *os.File (no copying goroutines:
// nothing calls cmd.Wait).
func (r *Reaper) Start(cmd *exec.Cmd) (<-chan unix.WaitStatus, error) {
	for _, f := range []any{cmd.Stdin, cmd.Stdout, cmd.Stderr} {
		if f == nil {
			continue
		}
		if _, ok := f.(*os.File); !ok {
			return nil, errors.New("reaper: child stdio must be *os.File")
		}
	}
	ch := make(chan unix.WaitStatus, 1)
	// Hold mu across Start so the loop cannot reap the pid before it is
	// registered.
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r.waiters[cmd.Process.Pid] = ch
	return ch, nil
}

// Orphans returns how many processes nobody started were reaped.
func (r *Reaper) Orphans() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orphans
}

// Stop stops reaping.
func (r *Reaper) Stop() {
	signal.Stop(r.sig)
	close(r.done)
	<-r.stopped
}

func (r *Reaper) loop() {
	defer close(r.stopped)
	for {
		r.reap()
		select {
		case <-r.done:
			return
		case <-r.sig:
		}
	}
}

// reap collects every child that has exited.
func (r *Reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return // ECHILD: no children; 0: none exited
		}
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- ws
			continue
		}
		r.orphans++
		r.log.Debug("reaped orphan", "pid", pid, "status", describe(ws))
	}
}

// describe renders a wait status the way a shell would.
func describe(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return "exit status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		return "killed by " + ws.Signal().String()
	}
	return "status " + strconv.Itoa(int(ws))
}
