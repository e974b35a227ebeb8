package job

import (
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
)

// forwarded are the signals a job relays to its remote processes.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGCONT, syscall.SIGTSTP}

// Catcher catches the signals a job forwards from before the job starts.
//
// Catching a signal costs the Go runtime a round trip to its signal
// thread, one signal after the other: ~0.3–0.6 ms for the eight here,
// which a one-node bpsh would otherwise wait for between its connection
// to the master and its exec. Catch starts them in the background, so
// they overlap the connection; Run waits for them to be in place before
// any process starts. A signal caught before then takes its default
// action once it is known to Run (or Release) — the process ends, or
// stops, as it would have uncaught — and one that its parent had
// ignored is ignored; so no process of the job ever starts after such a
// signal, as without a Catcher.
type Catcher struct {
	ch    chan os.Signal
	ready chan struct{}
	once  sync.Once
	taken atomic.Bool // Run took it over
}

// Catch starts catching the signals a job forwards (see Catcher). Pass
// it to Run (Options.Signals); a caller that returns without running
// the job calls Release.
func Catch() *Catcher {
	c := &Catcher{ch: make(chan os.Signal, 16), ready: make(chan struct{})}
	go func() {
		signal.Notify(c.ch, forwarded...)
		close(c.ready)
	}()
	return c
}

// settle waits for the signals to be caught, and gives each caught so
// far its default action (see Catcher).
func (c *Catcher) settle() {
	<-c.ready
	for {
		select {
		case s := <-c.ch:
			if s == syscall.SIGCONT {
				continue // its default does nothing to a running process
			}
			asUncaught(c.ch, s.(syscall.Signal))
		default:
			return
		}
	}
}

// Release gives the signals back to their default actions, first taking
// those caught so far (see Catcher). It does nothing once Run has taken
// the Catcher over.
func (c *Catcher) Release() {
	c.once.Do(func() {
		if c.taken.Load() {
			return
		}
		c.settle()
		signal.Stop(c.ch)
	})
}

// asUncaught gives sig the action it would have had uncaught — what the
// Go runtime does with it when nothing is notified of it: end or stop
// the process, or leave it be (SIGUSR1, or a signal ignored since the
// start) — and catches it on ch again if the process goes on. The signal
// is sent to this thread alone, which takes it on its way back from the
// system call, so the action is over before the signal is caught again.
//
// A stop signal (SIGTSTP: Ctrl-Z) is the exception: the Go runtime keeps
// its handler after Reset and drops a SIGTSTP nobody is notified of (its
// signal table marks the default as one to ignore), so bpsh never
// stopped and the terminal stayed with it, its job stopped. The process
// stops itself with SIGSTOP instead, as the kernel's default would.
func asUncaught(ch chan os.Signal, sig syscall.Signal) {
	signal.Reset(sig)
	if sig == syscall.SIGTSTP {
		syscall.Kill(os.Getpid(), syscall.SIGSTOP) // the kernel stops every thread now
	} else {
		runtime.LockOSThread()
		syscall.Tgkill(os.Getpid(), syscall.Gettid(), sig)
		runtime.UnlockOSThread()
	}
	signal.Notify(ch, sig)
}

// forwardSignals relays signals this process receives to every remote
// process; a terminating one sets stopped. The signals come from c if
// set (Catch), else are caught here. The func it returns ends the
// relaying and gives the signals back.
func forwardSignals(c *Catcher, procs []*proc, stopped *atomic.Bool) func() {
	var ch chan os.Signal
	if c != nil && c.taken.CompareAndSwap(false, true) {
		c.settle()
		ch = c.ch
	} else {
		ch = make(chan os.Signal, 16)
		signal.Notify(ch, forwarded...)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case s := <-ch:
				sig := s.(syscall.Signal)
				switch sig {
				case syscall.SIGTSTP:
					sig = syscall.SIGSTOP
				case syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT:
					stopped.Store(true)
				}
				for _, p := range procs {
					if p.cmd.PID != 0 {
						p.cmd.Signal(sig)
					}
				}
				if s == syscall.SIGTSTP {
					asUncaught(ch, syscall.SIGTSTP) // and this process stops too
				}
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}
