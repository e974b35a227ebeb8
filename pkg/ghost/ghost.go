// Package ghost puts a ghost in the master's process table for every
// remote process: a real process, owned by the job's user and a child
// of whoever started the job (bpsh, or any program on pkg/bproc), that
// `ps -ef`, `pgrep`, `pstree`, `top` and `kill` see and signal as if
// it were the remote process itself.
//
// # What a ghost is
//
// A 695-byte static x86-64 program (ghost_amd64.asm, no libc), run
// from one sealed memfd per spawning process, with argv = the remote
// command followed by "[node N]", so ps shows the command and the node,
// and its name (what ps -e and pgrep match) = the command's. Its
// environment holds BPROC_NODE and BPROC_PID (ps e). It catches every
// signal it can and reports each, as one byte, on a SOCK_SEQPACKET
// socket (its fd 3) to the spawner, which forwards it to the remote
// process; it never acts on one itself. The two it cannot catch:
//
//   - SIGSTOP stops it for real (state T in ps), and the spawner, its
//     parent, learns it from wait (SIGCHLD, waitid WSTOPPED) and
//     forwards SIGSTOP if the ghost is still stopped; the SIGCONT that
//     resumes it is caught and forwarded like any other signal, never
//     before that SIGSTOP.
//   - SIGKILL kills it: the spawner, reaping it, sees it die of a
//     signal it was not told to die of, and forwards that signal.
//
// When the remote process ends, the spawner tells its ghost ("x" CODE or
// "k" SIG on the socket), which then exits with the same code or dies
// of the same signal (without a core file): the remote status becomes
// the ghost's, which its parent reaps. When the remote process exec's
// ("e" ARGV) the ghost exec's itself again (/proc/self/exe), keeping its
// pid, so ps shows the new command. If the spawner dies, the ghost reads
// end of file and exits.
//
// # Why this design, and what it costs
//
// Measured here (BenchmarkGhosts and bench/process/ghosts.sh, see
// bench/process/README.md): a ghost is 6.4 KiB PSS among a hundred or a
// thousand (10 KiB RSS: two stack pages — arguments, then the page its
// 64 KiB message buffer starts on — and its share of the one code page;
// a lone ghost 8–12 KiB), so a thousand cost ~6.5 MiB; the goal was
// ≤ 256 KiB each. Starting one is a fork and exec of a one-page binary
// from Go: 0.4–1 ms on this loaded 2-core machine, growing slowly with
// the ghosts already running (each holds one descriptor of its
// spawner's, which every fork copies).
//
// Against the alternatives:
//
//   - a Go process per ghost: 688 KiB PSS each (TESTING.md);
//   - a CLONE_VM thread-like ghost sharing the spawner's memory: cheap
//     but ps shows the spawner's command line (argv lives in the shared
//     memory) and a SIGKILL or SIGSTOP aimed at one ghost cannot be told
//     from one aimed at its siblings;
//   - a tiny ghost traced by the spawner (PTRACE_SEIZE, signal-delivery
//     stops): works, but ptrace requests must come from the one thread
//     that attached (a locked OS thread in Go), Yama and seccomp may
//     forbid it, and a debugger can no longer attach to a ghost. A ghost
//     that catches its signals itself needs none of that, and the two
//     uncatchable signals are exactly the two its parent is told about
//     by wait.
//
// # Process-wide state
//
// Stops are reported to the parent process, not to a goroutine: one
// SIGCHLD watcher per process (started with the first ghost) asks
// waitid(P_ALL, WSTOPPED|WNOHANG) which children stopped and routes the
// reports to their ghosts. It consumes the stop reports of the
// process's other children too (never their exits); a program that
// waits for its own children's stops should not start ghosts.
package ghost

//go:generate ./mkimage.sh

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/beo-cluster/beo/pkg/procstat"
)

// ErrUnsupported is returned where no ghost image exists (not x86-64).
var ErrUnsupported = errors.New("ghosts: no ghost program for " + runtime.GOARCH)

// maxExec bounds the argv an Exec sends (the ghost reads 64 KiB).
const maxExec = 60 << 10

// Spawner starts ghosts from one copy of the ghost program. The zero
// value is ready; it makes its memfd at the first Start.
type Spawner struct {
	once sync.Once
	fd   *os.File // the memfd
	exe  string
	null *os.File // the ghosts' stdio
	err  error
}

// Config describes one ghost.
type Config struct {
	Argv []string // what ps shows: the remote command and its node
	Env  []string
	// Forward is called with every signal the ghost was sent, in order,
	// until it is told to end: the catchable ones as they arrive,
	// SIGSTOP when it stopped, and the signal that killed it when that
	// was not the one it was told to die of (SIGKILL). Calls for one
	// ghost never overlap.
	Forward func(syscall.Signal)
	// Pgid is the process group the ghost joins: another ghost's, so
	// that kill -- -PGID reaches both, as it would their remote
	// processes. 0: a group of its own. A group that is gone (its
	// ghosts ended) is an error (EPERM).
	Pgid int
}

// Ghost is one running ghost.
type Ghost struct {
	Pid  int
	conn *net.UnixConn
	fwd  func(syscall.Signal)

	fmu       sync.Mutex  // serialises fwd
	ending    atomic.Bool // told to end: forward nothing more
	held      bool        // stopped by Hold: its stops are not forwarded (under fmu)
	quietCont int         // SIGCONTs of Release not to forward (under fmu)
	done      chan struct{}
	ws        syscall.WaitStatus
	werr      error
}

// program makes the memfd holding the ghost program, once.
func (s *Spawner) program() (string, error) {
	s.once.Do(func() {
		if len(image) == 0 {
			s.err = ErrUnsupported
			return
		}
		fd, err := unix.MemfdCreate("beo-ghost", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
		if errors.Is(err, unix.EINVAL) { // before Linux 6.3: no MFD_EXEC, memfds are executable
			fd, err = unix.MemfdCreate("beo-ghost", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
		}
		if err != nil {
			s.err = fmt.Errorf("ghosts: memfd: %w", err)
			return
		}
		f := os.NewFile(uintptr(fd), "beo-ghost")
		if _, err := f.Write(image); err != nil {
			f.Close()
			s.err = fmt.Errorf("ghosts: memfd: %w", err)
			return
		}
		unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE)
		null, err := os.Open(os.DevNull)
		if err != nil {
			f.Close()
			s.err = err
			return
		}
		// Through this process's fd table, not the child's: the child
		// rearranges its own descriptors before it exec's.
		s.fd, s.null, s.exe = f, null, fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd)
	})
	return s.exe, s.err
}

// Check reports whether ghosts can start here (and makes the memfd).
func (s *Spawner) Check() error {
	_, err := s.program()
	return err
}

// Start starts a ghost.
func (s *Spawner) Start(c Config) (*Ghost, error) {
	exe, err := s.program()
	if err != nil {
		return nil, err
	}
	if len(c.Argv) == 0 {
		return nil, errors.New("ghosts: no argv")
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("ghosts: socketpair: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "ghost"), os.NewFile(uintptr(fds[1]), "ghost")
	defer theirs.Close()
	fc, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		return nil, fmt.Errorf("ghosts: %w", err)
	}
	conn := fc.(*net.UnixConn)
	env := c.Env
	if env == nil {
		env = []string{}
	}
	g := &Ghost{conn: conn, fwd: c.Forward, done: make(chan struct{})}
	if g.fwd == nil {
		g.fwd = func(syscall.Signal) {}
	}
	// Registered before it can stop, under the lock the watcher takes.
	// syscall.ForkExec, not os.StartProcess: the latter keeps a pidfd
	// per child, and every descriptor the spawner holds is copied into
	// each child it forks and closed again by its exec — the cost of a
	// start grows with the ghosts already running. One socket is all a
	// ghost costs its spawner; its end of file tells its death.
	reg.mu.Lock()
	null := s.null.Fd()
	pid, err := syscall.ForkExec(exe, c.Argv, &syscall.ProcAttr{
		Dir: "/", Env: env, Files: []uintptr{null, null, null, theirs.Fd()},
		// Not the client's process group: a terminal's ^C reaches the
		// client, which forwards it, and not each ghost as well. Its
		// own, or another ghost's (Config.Pgid).
		Sys: &syscall.SysProcAttr{Setpgid: true, Pgid: c.Pgid},
	})
	if err != nil {
		reg.mu.Unlock()
		conn.Close()
		return nil, fmt.Errorf("ghosts: start: %w", err)
	}
	g.Pid = pid
	reg.add(g)
	reg.mu.Unlock()
	// Returned once its handlers are in place (it says so with a 0
	// byte), so that a signal sent to it from now on is forwarded
	// rather than killing it. Signals that came sooner, and that it
	// caught, are reported before that byte.
	early, err := g.ready()
	if err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		go g.run()
		return nil, fmt.Errorf("ghosts: start: %w", err)
	}
	go g.run()
	for _, sig := range early {
		g.forward(sig)
	}
	return g, nil
}

// readyWait bounds the wait for a new ghost's handlers: a few hundred
// system calls.
const readyWait = 10 * time.Second

// ready reads up to the ghost's 0 byte and returns the signals before it.
func (g *Ghost) ready() ([]syscall.Signal, error) {
	g.conn.SetReadDeadline(time.Now().Add(readyWait))
	defer g.conn.SetReadDeadline(time.Time{})
	var early []syscall.Signal
	var b [16]byte
	for {
		n, err := g.conn.Read(b[:])
		if err != nil {
			return nil, err
		}
		for i, s := range b[:n] {
			if s == 0 {
				if i != n-1 {
					return nil, errors.New("unexpected report after ready")
				}
				return early, nil
			}
			early = append(early, syscall.Signal(s))
		}
	}
}

// forward passes sig on unless the ghost is ending.
func (g *Ghost) forward(sig syscall.Signal) {
	g.fmu.Lock()
	defer g.fmu.Unlock()
	if sig == syscall.SIGCONT && g.quietCont > 0 {
		g.quietCont--
		return
	}
	if !g.ending.Load() {
		g.fwd(sig)
	}
}

// run forwards the signals the ghost reports until its socket ends —
// it exited — and then reaps it.
func (g *Ghost) run() {
	var b [16]byte
	for {
		n, err := g.conn.Read(b[:])
		if err != nil {
			break
		}
		for _, s := range b[:n] {
			if s >= 1 && s <= 64 {
				g.forward(syscall.Signal(s))
			}
		}
	}
	g.reap()
}

// stopped is the SIGCHLD watcher's report: forward SIGSTOP if the ghost
// is still stopped. One already running again was continued, and that
// SIGCONT is forwarded (or was): a stop and a resume in quick
// succession leave the remote process running, as the ghost is. A
// SIGCONT arriving from now on is forwarded after this SIGSTOP (fmu).
func (g *Ghost) stopped() {
	g.fmu.Lock()
	defer g.fmu.Unlock()
	if g.held || g.ending.Load() || procState(g.Pid) != 'T' {
		return
	}
	g.fwd(syscall.SIGSTOP)
}

// reap waits for the ghost's end, which its socket's end of file has
// announced (a wait of microseconds: its files close just before it
// exits); a death nobody asked for is forwarded.
func (g *Ghost) reap() {
	for {
		_, g.werr = syscall.Wait4(g.Pid, &g.ws, 0, nil)
		if g.werr != syscall.EINTR {
			break
		}
	}
	reg.remove(g.Pid)
	g.conn.Close()
	if g.werr == nil && g.ws.Signaled() {
		g.forward(g.ws.Signal())
	}
	close(g.done)
}

// end stops forwarding, after any forward under way.
func (g *Ghost) end() {
	g.fmu.Lock()
	g.ending.Store(true)
	g.fmu.Unlock()
}

// tell sends the ghost one command and stops forwarding.
func (g *Ghost) tell(msg []byte) {
	g.end()
	g.conn.SetWriteDeadline(time.Now().Add(time.Second))
	g.conn.Write(msg) // an error: it is gone already
	// A stopped ghost reads nothing: resume it (the SIGCONT it reports
	// is not forwarded any more).
	unix.Kill(g.Pid, unix.SIGCONT)
}

// Exit makes the ghost exit with code (0 to 255): the remote process did.
func (g *Ghost) Exit(code int) { g.tell([]byte{'x', byte(code)}) }

// Die makes the ghost die of sig: the remote process did.
func (g *Ghost) Die(sig syscall.Signal) {
	if sig == syscall.SIGKILL {
		g.end()
		unix.Kill(g.Pid, unix.SIGKILL)
		return
	}
	g.tell([]byte{'k', byte(sig)})
}

// Exec makes the ghost show argv: the remote process exec'd.
func (g *Ghost) Exec(argv []string) error {
	var b strings.Builder
	b.WriteByte('e')
	for _, a := range argv {
		b.WriteString(strings.ReplaceAll(a, "\x00", ""))
		b.WriteByte(0)
	}
	if len(argv) == 0 || b.Len() > maxExec {
		return fmt.Errorf("ghosts: exec: %d arguments, %d bytes", len(argv), b.Len())
	}
	g.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := g.conn.Write([]byte(b.String()))
	return err
}

// Hold stops the ghost, forwarding nothing: its remote process was
// stopped by other means (its client's job control, ^Z), and ps shows
// the ghost stopped too.
func (g *Ghost) Hold() {
	g.fmu.Lock()
	defer g.fmu.Unlock()
	if g.ending.Load() || procState(g.Pid) == 'T' {
		return
	}
	g.held = true
	unix.Kill(g.Pid, unix.SIGSTOP)
}

// Release resumes the ghost, forwarding nothing: its remote process was
// resumed by other means.
func (g *Ghost) Release() {
	g.fmu.Lock()
	defer g.fmu.Unlock()
	if g.ending.Load() || !g.held {
		return
	}
	// A stop report of the Hold collected after this is forwarded, and
	// its SIGCONT after it (stopped): the remote process ends running.
	g.held = false
	g.quietCont++ // the ghost reports every SIGCONT, stopped or not
	unix.Kill(g.Pid, unix.SIGCONT)
}

// Done is closed once the ghost has been reaped.
func (g *Ghost) Done() <-chan struct{} { return g.done }

// Status is how the ghost ended (after Done).
func (g *Ghost) Status() (syscall.WaitStatus, error) {
	<-g.done
	return g.ws, g.werr
}

// procState is the state letter of /proc/PID/stat, 0 if unreadable.
func procState(pid int) byte {
	st, err := procstat.Read(pid)
	if err != nil {
		return 0
	}
	return st.State
}
