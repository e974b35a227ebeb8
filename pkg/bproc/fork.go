package bproc

import (
	"io"
	"sync"
	"syscall"

	"github.com/beo-cluster/beo/pkg/wire"
)

// Forked copies (Rfork). When a Cmd's process forks a copy of itself
// onto another node, the master tells the Cmd (wire.Update.Fork) and
// the Cmd adopts the copy: a Cmd of its own, started by an exec that
// names the copy (wire.Exec.Fork), with its own ghost and exit status
// and its output written to the same Stdout and Stderr. The Cmd that
// started the job waits for all of them (Wait), and Signal reaches them
// too, as a signal to a process group would. A copy's exit status is
// its ghost's; Wait returns the status of the Cmd's own process.

// forks are a Cmd's adopted copies.
type forks struct {
	id  uint64 // this Cmd is a copy: the master staged it under id
	top *forks // the forks of the Cmd that started the job (nil: this one)
	// omu serialise the job's writes to Stdout and Stderr (top's): the
	// copies' output goes to the same writers.
	omu  [2]sync.Mutex
	mu   sync.Mutex
	kids []*Cmd // started copies (top's)
	wg   sync.WaitGroup
}

func (f *forks) head() *forks {
	if f.top != nil {
		return f.top
	}
	return f
}

// writer is w, the writer of output fd (1 or 2), written under the
// job's lock for fd.
func (f *forks) writer(fd int, w io.Writer) io.Writer {
	return &lockedWriter{w: w, mu: &f.head().omu[fd-1]}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// adopt runs the copy the master announced, as a Cmd of the job.
func (cmd *Cmd) adopt(fk *wire.Fork) {
	h := cmd.fk.head()
	kid := &Cmd{Node: fk.Node, Path: cmd.Path, Args: cmd.Args, Env: cmd.Env, Dir: cmd.Dir,
		Stdout: cmd.Stdout, Stderr: cmd.Stderr, NoIO: cmd.NoIO, Rlimits: cmd.Rlimits, c: cmd.c}
	kid.fk.id, kid.fk.top = fk.ID, h
	h.wg.Add(1) // the job's Cmd is not done: this runs within its Wait, or a copy's
	go func() {
		defer h.wg.Done()
		if kid.Start() != nil {
			return // the process that forked learns why from the master (Rfork)
		}
		h.mu.Lock()
		h.kids = append(h.kids, kid)
		h.mu.Unlock()
		kid.Wait()
	}()
}

// wait waits for the job's copies, if this Cmd started the job.
func (f *forks) wait() {
	if f.top == nil {
		f.wg.Wait()
	}
}

// signal sends sig to the job's copies, if this Cmd started the job.
func (f *forks) signal(sig syscall.Signal) {
	if f.top != nil {
		return
	}
	f.mu.Lock()
	kids := append([]*Cmd(nil), f.kids...)
	f.mu.Unlock()
	for _, k := range kids {
		k.Signal(sig)
	}
}
