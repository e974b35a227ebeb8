// Package beorsh implements beorsh, the cluster's remote shell: what
// OpenMPI's rsh launcher (plm_rsh_agent) and MPICH's hydra (-launcher rsh
// -launcher-exec) call to start their daemons on nodes, and what any
// script written for rsh can call.
//
//	beorsh [-l user] [-n] [-x|-X|-T|-4] host command [words...]
//
// As rsh: the words are joined with spaces into one command line, which
// runs as `/bin/sh -c LINE` on the node as the calling user, in the user's
// home directory (the node's / if the home directory is not there);
// stdin, stdout and stderr are forwarded (-n: stdin from /dev/null), and
// beorsh exits with the command's status — 2 for a bad command line of
// its own, 255 when the command could not run
// (a host that is not a node, a node that is down or refuses the user),
// lost its node, or died by a signal, with "beorsh: host: why" on stderr.
// user@host and -l user are accepted for the caller's own name only.
// -x, -X, -T and -4 (X11, tty and address options some launchers pass to
// ssh) are accepted and ignored.
//
// The host is any name beonss gives a node (pkg/nss Resolver): N, .N, nN,
// a nodename alias, a node's address; master, .-1, -1, localhost, or this
// host's own name run the command here.
//
// The environment is a login's, as rsh gives: HOME, USER, LOGNAME, SHELL
// (/bin/sh), and from the caller PATH, LD_LIBRARY_PATH, LANG, LC_*, TZ
// and BEO_SOCKET (so beo clients started there reach the same master) —
// not the rest of the caller's environment: launchers pass what their
// daemons need on the command line.
//
// A failure of beorsh's own — the command could not start on the node,
// or the node was lost under it — ends an MPICH mpiexec that called
// beorsh (SIGTERM), as hydra would otherwise wait forever for that
// proxy (see endHydra).
//
// Signals beorsh receives (INT, TERM, HUP, QUIT, USR1, USR2, CONT) are
// sent to the remote command; one that ends it is the caller's doing, not
// a failure: beorsh then exits 128+N without a word, as a shell reports
// a command killed by signal N (a launcher stopping its daemons at the
// end of a job). When the launcher itself is gone the command is first
// given orphanGrace to end by itself (orted cleans up after its job:
// stopped mid-way, it leaves session directories whose names a later
// job may draw again). After INT, TERM or HUP beorsh waits at most stopGrace
// for the command to end, then leaves all the same (128+N). When beorsh
// is gone, the master hangs the remote command up (SIGHUP to its
// process group, SIGKILL after the node's grace period): a command that
// ignores TERM cannot outlive it. beorsh asks the kernel for SIGTERM
// when its parent dies, so a launcher killed outright takes its daemons
// with it.
package beorsh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/job"
	"github.com/beo-cluster/beo/pkg/nss"
	"golang.org/x/sys/unix"
)

const usage = "usage: beorsh [-l user] [-n] host command [words...]"

// failed is the status of a command that could not run, as rsh and ssh exit.
const failed = 255

// Run is the beorsh applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	// The parent (mpirun, mpiexec) going away ends this too. It may have
	// gone before the signal was asked for: hydra ends in milliseconds
	// when another host's launch fails (endHydra), while this beorsh is
	// still starting — it is then init's child, and the pipe of its
	// output has no reader: it must not start a proxy nobody will stop.
	ppid := os.Getppid()
	unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0)
	if os.Getppid() != ppid || ppid == 1 && unread(stdio.Out) {
		return &applets.Exit{Code: failed}
	}
	o, err := parse(args)
	if errors.Is(err, errHelp) {
		fmt.Fprintln(stdio.Err, usage)
		return &applets.Exit{Code: 0}
	}
	if err != nil {
		return &applets.Usage{Line: usage, Msg: err.Error()}
	}
	o.ppid = ppid
	go outlive(ppid, stdio.Out)
	code, err := run(ctx, o, stdio)
	if err != nil {
		fmt.Fprintf(stdio.Err, "beorsh: %s: %v\n", o.host, err)
		// hydra relays this message from a pipe, and drops what it has
		// not read when it ends: let it read first.
		drain(stdio.Err, drainWait)
		endHydra(ppid)
		return &applets.Exit{Code: failed}
	}
	if code != 0 {
		return &applets.Exit{Code: code}
	}
	return nil
}

var errHelp = errors.New("help")

// unread reports whether w is a pipe nobody reads any more.
func unread(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	p := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLOUT}}
	n, err := unix.Poll(p, 0)
	return err == nil && n == 1 && p[0].Revents&unix.POLLERR != 0
}

type opts struct {
	ppid       int // the launcher
	user, host string
	nullIn     bool
	line       string
}

// parse reads rsh's command line. Options come before the host; the words
// after it are the command, even those that begin with '-'.
func parse(args []string) (opts, error) {
	var o opts
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" || a == "-1" { // -1: the master, a host
			break
		}
		switch a {
		case "-l":
			if i+1 >= len(args) {
				return o, errors.New("-l wants a user name")
			}
			i++
			o.user = args[i]
		case "-h", "-help", "--help":
			return o, errHelp
		case "-n":
			o.nullIn = true
		case "-x", "-X", "-T", "-4":
		default:
			if v, ok := strings.CutPrefix(a, "-l"); ok && v != "" {
				o.user = v
				continue
			}
			return o, fmt.Errorf("unknown option %s", a)
		}
	}
	if i >= len(args) {
		return o, errors.New("missing host")
	}
	o.host = args[i]
	if u, h, ok := strings.Cut(o.host, "@"); ok {
		o.user, o.host = u, h
	}
	words := args[i+1:]
	if len(words) == 0 {
		return o, fmt.Errorf("%s: no command (beorsh runs commands; it has no interactive login)", o.host)
	}
	o.line = strings.Join(words, " ")
	return o, nil
}

// run runs the command and returns its exit status.
func run(ctx context.Context, o opts, stdio applets.IO) (code int, err error) {
	me, err := user.Current()
	if err != nil { // not in the passwd file: what the environment says
		me = &user.User{Uid: fmt.Sprint(os.Getuid()), Username: os.Getenv("USER"), HomeDir: os.Getenv("HOME")}
		if me.Username == "" {
			me.Username = me.Uid
		}
	}
	if o.user != "" && o.user != me.Username && o.user != me.Uid {
		return 0, fmt.Errorf("cannot run as %s: beorsh runs commands as the calling user (%s)", o.user, me.Username)
	}
	cl, err := bproc.Dial(ctx, "")
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	st, err := cl.Status(ctx)
	if err != nil {
		return 0, err
	}
	addrs := map[int]string{}
	for _, n := range st.Nodes {
		addrs[n.Node] = n.Addr
	}
	conf := ""
	if st.Master != nil {
		conf = st.Master.Config
	}
	node, err := nss.ResolverFor(len(st.Nodes), addrs, st.MasterAddr, conf).Node(o.host)
	if err != nil {
		var nn *nss.NotNodeError
		if errors.As(err, &nn) {
			return 0, errors.New(nn.Why)
		}
		return 0, err
	}
	cmd := cl.Command(node, "/bin/sh", "-c", o.line)
	cmd.Env = loginEnv(me, os.Environ())
	cmd.Dir = "/"
	if fi, err := os.Stat(me.HomeDir); err == nil && fi.IsDir() {
		cmd.Dir = me.HomeDir
	}
	cmd.Stdout, cmd.Stderr = stdio.Out, stdio.Err
	if !o.nullIn && stdio.In != nil && !job.DevNull(stdio.In) {
		cmd.Stdin = stdio.In
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	fw := forward(cmd, o.ppid)
	defer fw.stop()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case sig := <-fw.ending:
		// Told to stop (the launcher ending, or dead): the command got the
		// signal; one that ignores it (MPICH's proxy whose mpiexec is gone
		// spins, catching TERM) is left to the hang-up beorsh's exit
		// brings — SIGHUP, then SIGKILL after the node's grace period.
		select {
		case err = <-waited:
		case <-time.After(stopGrace):
			return 128 + int(sig), nil
		}
	}
	var ee *bproc.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee) && ee.Signal == 0:
		return ee.Status, nil
	case errors.As(err, &ee) && fw.passed(ee.Signal):
		// Ended by a signal beorsh was sent and passed on: the launcher
		// (or its death) stopping its daemon, which is no failure to
		// report. The status a shell gives a command killed by it.
		return 128 + int(ee.Signal), nil
	}
	return 0, err
}

// loginEnv is the environment rsh would give: the account's, plus the
// caller's search paths and locale.
func loginEnv(me *user.User, caller []string) []string {
	env := []string{"HOME=" + me.HomeDir, "USER=" + me.Username, "LOGNAME=" + me.Username, "SHELL=/bin/sh"}
	path := false
	for _, e := range caller {
		k, _, _ := strings.Cut(e, "=")
		switch {
		case k == "PATH":
			path = true
			env = append(env, e)
		case k == "LD_LIBRARY_PATH", k == "LANG", k == "TZ", k == bproc.SocketEnv, strings.HasPrefix(k, "LC_"):
			env = append(env, e)
		}
	}
	if !path {
		env = append(env, "PATH=/usr/local/bin:/usr/bin:/bin")
	}
	return env
}

// stopGrace is how long beorsh waits, after passing on a signal that
// asks it to stop, for the command to end before it leaves anyway.
const stopGrace = 3 * time.Second

// parentCheck is how often beorsh looks whether its launcher is gone.
const parentCheck = time.Second

// orphanGrace is how long a command whose launcher has gone may take to
// end by itself (a daemon cleaning up after its job) before beorsh
// passes it SIGTERM.
const orphanGrace = 5 * time.Second

// outlive is beorsh's last word on never outliving its launcher
// (ppid): once the launcher is gone, whatever beorsh is doing —
// starting the command on a slow node, waiting for it, passing it a
// signal — it exits when the command's orphanGrace and stopGrace are
// over (status 128+SIGTERM, as if the launcher had stopped it). Its
// exit closes its connection, and the master hangs the remote command
// up (SIGHUP to its process group, SIGKILL after the node's grace).
//
// A beorsh whose launcher was gone before it could look (its parent
// was init from the start: hydra ends within milliseconds of another
// host's failed launch, while a slow node's beorsh is still starting)
// has no parent to watch; its output is: the launcher read it, and once
// nobody does (out is a pipe with no reader left) it is gone. The
// pipe's read end may live on a moment in a sibling the launcher forked
// after it, so Run's first look can miss it.
func outlive(ppid int, out io.Writer) {
	for os.Getppid() == ppid && !(ppid == 1 && unread(out)) {
		time.Sleep(parentCheck)
	}
	time.Sleep(orphanGrace + stopGrace + parentCheck)
	os.Exit(128 + int(syscall.SIGTERM))
}

// forwarder sends the signals beorsh receives to the remote command and
// remembers which it passed on; ending gets the first of INT, TERM and
// HUP.
type forwarder struct {
	ch     chan os.Signal
	done   chan struct{}
	sent   atomic.Uint64 // bit N: signal N was passed on
	ending chan syscall.Signal
	// orphaned: the launcher is gone, and the command has orphanGrace
	// to end by itself before beorsh passes it SIGTERM.
	orphaned bool
}

// forward starts passing cmd the signals beorsh receives. A launcher
// (ppid) that is gone counts as a SIGTERM received: the parent-death
// signal can be missed when it dies while beorsh starts.
func forward(cmd *bproc.Cmd, ppid int) *forwarder {
	f := &forwarder{ch: make(chan os.Signal, 8), done: make(chan struct{}), ending: make(chan syscall.Signal, 1)}
	signal.Notify(f.ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGCONT)
	orphan := time.NewTicker(parentCheck)
	go func() {
		defer orphan.Stop()
		for {
			var s os.Signal
			select {
			case <-f.done:
				return
			case <-orphan.C:
				if os.Getppid() == ppid {
					continue
				}
				orphan.Stop()
				s = syscall.SIGTERM
			case s = <-f.ch:
			}
			sig := s.(syscall.Signal)
			if sig == syscall.SIGTERM && os.Getppid() != ppid && !f.orphaned {
				// The launcher is gone (its parent-death signal, or found
				// so): its daemon is ending on its own — orted removes its
				// session directory after mpirun has gone — and is given
				// orphanGrace before it is told to stop.
				f.orphaned = true
				go func() {
					select {
					case <-f.done:
					case <-time.After(orphanGrace):
						f.ch <- syscall.SIGTERM
					}
				}()
				continue
			}
			f.sent.Or(1 << uint(sig))
			cmd.Signal(sig)
			if sig == syscall.SIGINT || sig == syscall.SIGTERM || sig == syscall.SIGHUP {
				select {
				case f.ending <- sig:
				default:
				}
			}
		}
	}()
	return f
}

// passed reports whether beorsh passed signal s on.
func (f *forwarder) passed(s syscall.Signal) bool {
	return s > 0 && s < 64 && f.sent.Load()&(1<<uint(s)) != 0
}

func (f *forwarder) stop() {
	signal.Stop(f.ch)
	close(f.done)
}

// drainWait bounds how long beorsh waits for its launcher to read its
// last message.
const drainWait = 2 * time.Second

// drain waits, up to limit, until the pipe w writes to holds nothing
// unread (TIOCINQ, which is FIONREAD, counts a pipe's bytes from either end). Anything
// but a pipe returns at once.
func drain(w io.Writer, limit time.Duration) {
	f, ok := w.(*os.File)
	if !ok {
		return
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if n, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCINQ); err != nil || n == 0 {
			return
		}
	}
}

// endHydra ends the MPICH launcher that called beorsh for a host whose
// proxy could not start or was lost with its node. hydra (MPICH 4.0's
// mpiexec) takes no notice of its launcher's exit status: it waits
// forever for a proxy that never started (with ssh as with beorsh), and
// for one on a node that lost power, whose control connection neither
// closes nor answers. SIGTERM makes it stop the proxies it still reaches
// and exit non-zero. Other parents (OpenMPI's mpirun) act on the exit
// status themselves.
func endHydra(ppid int) {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", ppid))
	if err != nil || !strings.HasPrefix(filepath.Base(exe), "mpiexec.hydra") || os.Getppid() != ppid {
		return
	}
	syscall.Kill(ppid, syscall.SIGTERM)
}
