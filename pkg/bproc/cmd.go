package bproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/beo-cluster/beo/pkg/elfdeps"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/wire"
	"golang.org/x/sys/unix"
)

// Cmd is a program to run on a node, shaped like os/exec.Cmd.
type Cmd struct {
	Node int
	Path string   // absolute path on the master (Command resolves it on PATH)
	Args []string // Args[0] is the program name, as in os/exec
	Env  []string // nil means os.Environ()
	Dir  string   // "" means the caller's working directory

	Stdin          io.Reader // nil: the remote stdin is /dev/null (no stream is opened for it)
	Stdout, Stderr io.Writer // nil: output is read and discarded

	// NoIO forwards no stdio at all (bpsh -N).
	NoIO bool
	// RemoteStdin/out/err redirect on the node (bpsh -I -O -E).
	RemoteStdin, RemoteStdout, RemoteStderr string
	// Rlimits to apply; nil means this process's own limits.
	Rlimits []Rlimit

	// PID is the process id on the node after Start.
	PID int
	// Sent is, after Start, how many bytes of program files (the program
	// and its libraries) the node had to be sent: 0 when its cache had
	// them all.
	Sent int64

	c       *Client
	lookErr error
	id      uint64 // the exec id on this client's connection
	ctl     net.Conn
	stdin   net.Conn
	out     *link.Output // where the master's output streams land (unless NoIO)
	local   *exec.Cmd
	// releaseLocal frees the thread that started local (startPinned).
	releaseLocal func()
	wmu          sync.Mutex // serialises frames written on ctl
	started      bool
	waited       bool
	gh           *cmdGhosts            // its ghosts (ghosts.go)
	fk           forks                 // the copies its process forked (fork.go)
	outErr       atomic.Pointer[error] // the first failed write to Stdout or Stderr
}

// ExitError reports a remote process that exited non-zero or by a signal.
type ExitError struct {
	Node   int
	Status int
	Signal syscall.Signal
	// OOMKills counts the job's processes the node kernel's OOM killer
	// killed (its cgroup's memory.events: wire.Usage), 0 when none or
	// unknown: a SIGKILL out of nowhere is then named for what it was.
	OOMKills int64
}

func (e *ExitError) Error() string { return fmt.Sprintf("node %d: %s", e.Node, e.Reason()) }

// Reason is Error without the node: "exit status 3", "killed by signal 9
// (killed)", and when the node ran out of memory "killed by signal 9
// (killed): out of memory, the kernel killed 1 process of the job".
func (e *ExitError) Reason() string {
	why := fmt.Sprintf("exit status %d", e.Status)
	if e.Signal != 0 {
		why = fmt.Sprintf("killed by signal %d (%v)", int(e.Signal), e.Signal)
	}
	switch {
	case e.OOMKills == 1:
		why += ": out of memory, the kernel killed 1 process of the job"
	case e.OOMKills > 1:
		why += fmt.Sprintf(": out of memory, the kernel killed %d processes of the job", e.OOMKills)
	}
	return why
}

// Command returns a Cmd running name with args on node. name is resolved on
// this process's PATH (the master's PATH), as os/exec would.
func (c *Client) Command(node int, name string, args ...string) *Cmd {
	cmd := &Cmd{Node: node, Args: append([]string{name}, args...), c: c}
	p, err := exec.LookPath(name)
	if err == nil {
		p, err = filepath.Abs(p)
	}
	cmd.Path, cmd.lookErr = p, err
	return cmd
}

// Run starts the command and waits for it.
func (cmd *Cmd) Run() error {
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Wait()
}

// Start starts the command on its node. A failure is a *NodeError.
func (cmd *Cmd) Start() error {
	if cmd.started {
		return errors.New("bproc: already started")
	}
	if cmd.lookErr != nil || (cmd.Node == -1 && cmd.fk.id == 0) {
		// On a node, -1 is the master, and a program this node has
		// no copy of the master resolves (on its PATH).
		where, err := cmd.c.Where(context.Background())
		switch {
		case err != nil && cmd.Node == -1:
			return onNode(cmd.Node, err)
		case err != nil || where == -1:
			if cmd.lookErr != nil {
				return onNode(cmd.Node, cmd.lookErr)
			}
			cmd.started = true
			return cmd.startLocal()
		case cmd.lookErr != nil || (cmd.Node == -1 && !strings.Contains(cmd.Args[0], "/")):
			cmd.Path, cmd.lookErr = cmd.Args[0], nil // the master looks it up
		}
	}
	cmd.started = true
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	dir := cmd.Dir
	if dir == "" {
		dir, _ = os.Getwd()
	}
	rl := ownRlimits()
	if cmd.Rlimits != nil {
		rl = rlimits(cmd.Rlimits)
	}
	ex := &wire.Exec{
		Version: wire.Version,
		Node:    cmd.Node, Path: cmd.Path, Argv: cmd.Args, Env: env, Dir: dir, Rlim: rl,
		NoIO: cmd.NoIO, Stdin: cmd.RemoteStdin, Stdout: cmd.RemoteStdout, Stderr: cmd.RemoteStderr,
		NoStdin: cmd.Stdin == nil || cmd.RemoteStdin != "",
		Fork:    cmd.fk.id,
	}
	ex.ID = cmd.c.nextID.Add(1)
	cmd.id = ex.ID
	if !cmd.NoIO {
		// Before the master can know the id. The master opens the
		// stdout and stderr streams when output comes (wire Version 4).
		cmd.out = cmd.c.outs.Expect(ex.ID, cmd.relay)
	}
	ctl, err := cmd.c.open(context.Background(), wire.Header{Op: wire.OpRun, Exec: ex})
	if err != nil {
		cmd.abandon()
		return onNode(cmd.Node, err)
	}
	cmd.ctl = ctl
	// The stdin stream follows at once, under the id this client chose:
	// no reply is awaited before the process can start. The master pairs
	// it with the exec, or closes it if it cannot run.
	if !ex.NoIO && !ex.NoStdin {
		s, err := cmd.c.open(context.Background(), wire.Header{Op: wire.OpAttach, Attach: &wire.Attach{ID: ex.ID, FD: 0}})
		if err != nil {
			ctl.Close()
			cmd.abandon()
			return onNode(cmd.Node, err)
		}
		cmd.stdin = s
		go func() {
			io.Copy(s, cmd.Stdin)
			s.Close()
		}()
	}
	// Then Started, or a Result with why the command cannot run at all
	// (permission, a program the caller cannot read, a node down).
	var st wire.ExecReply
	if err := wire.Read(ctl, &st); err != nil {
		ctl.Close()
		cmd.abandon()
		return onNode(cmd.Node, cmd.c.fail(fmt.Errorf("exec: %w", err)))
	}
	if st.Failed() {
		ctl.Close()
		cmd.abandon()
		return remoteOn(cmd.Node, st.Result)
	}
	cmd.PID, cmd.Sent = st.PID, st.Sent
	cmd.startGhosts()
	return nil
}

// abandon ends the streams of a command that failed to start.
func (cmd *Cmd) abandon() {
	if cmd.stdin != nil {
		cmd.stdin.Close()
	}
	if cmd.out != nil {
		cmd.c.outs.Finish(cmd.id, cmd.out, 0, 0, nil)
	}
}

// relay copies the output stream the master opened for fd to Stdout or
// Stderr (link.Outputs runs it on the stream's own goroutine).
func (cmd *Cmd) relay(fd int, s net.Conn) {
	w := cmd.Stdout
	if fd == 2 {
		w = cmd.Stderr
	}
	if w == nil {
		w = io.Discard
	}
	fw := &failWriter{w: cmd.fk.writer(fd, w)}
	io.Copy(fw, s)
	if fw.err != nil {
		// Where the output goes failed (a full disk, a closed pipe).
		// The rest is read and dropped — a stream left unread would
		// hold the process, the master and Wait — and the process gets
		// SIGPIPE, as a writer whose reader went away; Wait reports
		// the failure.
		if cmd.outErr.CompareAndSwap(nil, &fw.err) {
			go cmd.Signal(syscall.SIGPIPE)
		}
		io.Copy(io.Discard, s)
	}
	s.Close()
}

// failWriter passes writes on to w and keeps the first failure.
type failWriter struct {
	w   io.Writer
	err error
}

func (f *failWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil && f.err == nil {
		f.err = err
	}
	return n, err
}

// Wait waits for the remote process to exit and its output to arrive. A
// process that ran and failed is an *ExitError, any other failure a
// *NodeError.
func (cmd *Cmd) Wait() error {
	if !cmd.started {
		return errors.New("bproc: not started")
	}
	if cmd.waited {
		return errors.New("bproc: Wait was already called")
	}
	cmd.waited = true
	if cmd.local != nil {
		return cmd.waitLocal()
	}
	defer cmd.ctl.Close()
	var r wire.Result
	err := cmd.readResult(&r) // and the node's Updates before it (ghosts.go)
	cmd.endGhosts(r, err != nil)
	var lost error
	if cmd.out != nil {
		if err != nil {
			r.Opened = 0 // wait only for the copies under way
		}
		// The Result's streams were opened, copied and closed before
		// it was written: Wait returns with all of their bytes written.
		lost = cmd.c.outs.Finish(cmd.id, cmd.out, r.Opened, cmd.c.outputWait, cmd.c.sess.CloseChan())
	}
	cmd.fk.wait() // the copies its process forked, and their output
	switch {
	case err != nil:
		return onNode(cmd.Node, cmd.c.fail(fmt.Errorf("lost the process: %w", err)))
	case r.Err != "":
		return remoteOn(cmd.Node, r)
	case lost != nil:
		return onNode(cmd.Node, fmt.Errorf("output lost: %w", lost))
	case cmd.outErr.Load() != nil:
		return onNode(cmd.Node, fmt.Errorf("its output could not be written: %w", *cmd.outErr.Load()))
	case r.Signal != 0 || r.Status != 0:
		ee := &ExitError{Node: cmd.Node, Status: r.Status, Signal: syscall.Signal(r.Signal)}
		if r.Usage != nil && r.Usage.OOMKills > 0 {
			ee.OOMKills = r.Usage.OOMKills
		}
		return ee
	}
	return nil
}

// Signal sends sig to the remote process (and its process group).
func (cmd *Cmd) Signal(sig syscall.Signal) error {
	if cmd.local != nil {
		return cmd.local.Process.Signal(sig)
	}
	if cmd.ctl == nil {
		return errors.New("bproc: not started")
	}
	cmd.wmu.Lock()
	err := wire.Write(cmd.ctl, wire.Signal{Sig: int(sig)})
	cmd.wmu.Unlock()
	cmd.holdGhosts(sig) // stopped or resumed: its ghosts too (ghosts.go)
	cmd.fk.signal(sig)  // and the copies its process forked (fork.go)
	return err
}

func (cmd *Cmd) startLocal() error {
	l := exec.Command(cmd.Path, cmd.Args[1:]...)
	l.Args = cmd.Args
	if elfdeps.NeedsShell(cmd.Path) { // a script without #!, as execvp runs it
		l.Path, l.Args = elfdeps.Shell, elfdeps.ShellArgv(cmd.Path, cmd.Args)
	}
	l.Env, l.Dir = cmd.Env, cmd.Dir
	if !cmd.NoIO {
		l.Stdin, l.Stdout, l.Stderr = cmd.Stdin, cmd.Stdout, cmd.Stderr
	}
	// Pdeathsig: a local process ends with the program that started it
	// (bpsh, beorun SIGKILLed), as its remote ones do on their nodes.
	l.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	for _, r := range []struct {
		path string
		in   bool
		dst  *io.Writer
	}{{cmd.RemoteStdout, false, &l.Stdout}, {cmd.RemoteStderr, false, &l.Stderr}} {
		if r.path != "" {
			f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				return onNode(-1, err)
			}
			*r.dst = f
		}
	}
	if cmd.RemoteStdin != "" {
		f, err := os.Open(cmd.RemoteStdin)
		if err != nil {
			return onNode(-1, err)
		}
		l.Stdin = f
	}
	release, err := startPinned(l)
	if err != nil {
		return onNode(-1, err)
	}
	cmd.local, cmd.PID, cmd.releaseLocal = l, l.Process.Pid, release
	return nil
}

// startPinned starts l from a thread locked to its goroutine until
// release is called (after Wait). The kernel sends Pdeathsig when the
// thread that forked the child ends, not the process, and the Go runtime
// ends a thread whose goroutine exits while locked to it; a thread held
// for the child's life is one that ends only with the process.
func startPinned(l *exec.Cmd) (release func(), err error) {
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := l.Start()
		errc <- err
		if err == nil {
			<-done
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return sync.OnceFunc(func() { close(done) }), nil
}

func (cmd *Cmd) waitLocal() error {
	err := cmd.local.Wait()
	cmd.releaseLocal()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return &ExitError{Node: -1, Signal: ws.Signal()}
		}
		return &ExitError{Node: -1, Status: ws.ExitStatus()}
	}
	if err != nil {
		return onNode(-1, err)
	}
	return nil
}

// OwnRlimits returns this process's resource limits, to be applied to a
// remote process so it runs under the same limits as it would locally.
func OwnRlimits() []Rlimit {
	own := ownRlimits()
	out := make([]Rlimit, len(own))
	for i, l := range own {
		out[i] = Rlimit{Resource: l.Resource, Cur: l.Cur, Max: l.Max}
	}
	return out
}

// ownRlimits is OwnRlimits as the protocol sends them.
func ownRlimits() []wire.Rlimit {
	var out []wire.Rlimit
	for _, r := range []int{unix.RLIMIT_CPU, unix.RLIMIT_FSIZE, unix.RLIMIT_DATA, unix.RLIMIT_STACK,
		unix.RLIMIT_CORE, unix.RLIMIT_NOFILE, unix.RLIMIT_AS, unix.RLIMIT_NPROC, unix.RLIMIT_MEMLOCK} {
		var l unix.Rlimit
		if unix.Getrlimit(r, &l) == nil {
			out = append(out, wire.Rlimit{Resource: r, Cur: l.Cur, Max: l.Max})
		}
	}
	return out
}
