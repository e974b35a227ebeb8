package pid1

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/bootparam"
	"github.com/beo-cluster/beo/pkg/cgroup"
	"golang.org/x/sys/unix"
)

// Service is a daemon PID 1 keeps running: an applet of the beo binary,
// restarted whenever it exits.
type Service struct {
	Name string // applet name: argv[0] of the child, as its /bin symlink would give
	// Args builds the applet's arguments from the kernel command line.
	Args func(p bootparam.Params) []string
	// Early services start as soon as the network is up, before the
	// rootfs is fetched (log forwarding); the others once it is unpacked.
	Early bool
	// Nice is the service's scheduling priority (setpriority(2), 0 to 19).
	Nice int
	// Exited, if set, runs each time the service's process has ended,
	// before it is started again: bpslave's kills the node's jobs
	// (KillJobs).
	Exited func(log *slog.Logger)
}

// HelperNice is the priority of the node's helper daemons (log
// forwarding, stats, name proxy): they start while init fetches the
// rootfs and bpslave connects, and each Go process start costs a few
// hundred milliseconds of CPU under emulation; at nice 10 they get about
// a tenth of the CPU while bpslave (nice 0) wants it — at boot and later
// while jobs run — and all of it otherwise.
const HelperNice = 10

// Restart backoff: a service that exits is started again after
// minRestart, doubling up to maxRestart while it keeps failing; one that
// ran at least stableRun starts over at minRestart.
const (
	minRestart = 500 * time.Millisecond
	maxRestart = 30 * time.Second
	stableRun  = time.Minute
	stopWait   = 3 * time.Second
)

// supervisor runs services through a Reaper.
type supervisor struct {
	log    *slog.Logger
	reaper *Reaper
	binary string   // the beo executable
	env    []string // the children's environment
	stdin  *os.File
	stdout *os.File // children's stdout and stderr: the console
	params bootparam.Params

	wg      sync.WaitGroup
	mu      sync.Mutex
	running map[string]*os.Process
}

// run starts s now and keeps it running until ctx ends, then sends it
// SIGTERM (SIGKILL after stopWait). It returns once the first start was
// tried; wait for the end with sv.wait.
func (sv *supervisor) run(ctx context.Context, s Service) {
	first := sv.start(s)
	sv.wg.Add(1)
	go func() {
		defer sv.wg.Done()
		delay := minRestart
		c := first
		for {
			started := time.Now()
			err := c.err
			if err == nil {
				err = sv.wait1(ctx, s, c)
			}
			ran := time.Since(started)
			if s.Exited != nil && c.err == nil {
				s.Exited(sv.log)
			}
			if ctx.Err() != nil {
				return
			}
			if ran >= stableRun {
				delay = minRestart
			}
			sv.log.Warn("service ended; restarting", "service", s.Name, "err", err, "ran", ran.Round(time.Millisecond), "restart_in", delay)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, maxRestart)
			c = sv.start(s)
		}
	}()
}

type exitError struct{ status string }

func (e *exitError) Error() string { return e.status }

// child is one started instance of a service.
type child struct {
	proc   *os.Process
	exited <-chan unix.WaitStatus
	err    error // the start failed
}

// start starts one instance of s.
func (sv *supervisor) start(s Service) child {
	var args []string
	if s.Args != nil {
		args = s.Args(sv.params)
	}
	cmd := &exec.Cmd{
		Path:   sv.binary,
		Args:   append([]string{s.Name}, args...),
		Env:    sv.env,
		Dir:    "/",
		Stdin:  sv.stdin,
		Stdout: sv.stdout,
		Stderr: sv.stdout,
		// Own process group: a signal to the console's group (^C) does
		// not reach the daemons.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	exited, err := sv.reaper.Start(cmd)
	if err != nil {
		return child{err: err}
	}
	if s.Nice != 0 {
		if err := unix.Setpriority(unix.PRIO_PROCESS, cmd.Process.Pid, s.Nice); err != nil {
			sv.log.Warn("service priority", "service", s.Name, "nice", s.Nice, "err", err)
		}
	}
	sv.log.Info("service started", "service", s.Name, "pid", cmd.Process.Pid, "args", args)
	sv.mu.Lock()
	sv.running[s.Name] = cmd.Process
	sv.mu.Unlock()
	return child{proc: cmd.Process, exited: exited}
}

// wait1 waits for c to end, or for ctx to end and then stops it.
func (sv *supervisor) wait1(ctx context.Context, s Service, c child) error {
	defer func() {
		sv.mu.Lock()
		delete(sv.running, s.Name)
		sv.mu.Unlock()
		c.proc.Release()
	}()
	select {
	case ws := <-c.exited:
		return &exitError{describe(ws)}
	case <-ctx.Done():
	}
	c.proc.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(stopWait):
		c.proc.Kill()
		<-c.exited
	}
	return ctx.Err()
}

// pids returns the running services' pids by name.
func (sv *supervisor) pids() map[string]int {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	m := map[string]int{}
	for n, p := range sv.running {
		m[n] = p.Pid
	}
	return m
}

func (sv *supervisor) wait() { sv.wg.Wait() }

// KillJobs returns bpslave's Exited: it kills every job in the jobs
// group g at once (cgroup.kill), so no job outlives the bpslave that
// started it — killed, crashed or restarted (pkg/slave orphans.go).
func KillJobs(g cgroup.Group) func(*slog.Logger) {
	return func(log *slog.Logger) {
		if !g.Exists() {
			return
		}
		if err := g.Kill(); err != nil {
			log.Error("bpslave ended: its jobs could not be killed", "group", g, "err", err)
			return
		}
		log.Info("bpslave ended: its jobs are killed", "group", g)
	}
}
