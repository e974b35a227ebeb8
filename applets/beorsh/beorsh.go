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
// A launch that fails before the command starts on the node ends an
// MPICH mpiexec that called beorsh (SIGTERM), as hydra would otherwise
// wait forever for that proxy (see endHydra).
//
// Signals beorsh receives (INT, TERM, HUP, QUIT, USR1, USR2, CONT) are
// sent to the remote command; if beorsh itself dies, the master hangs the
// remote command up (SIGHUP). beorsh asks the kernel for SIGTERM when its
// parent dies, so a launcher killed outright takes its daemons with it.
package beorsh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"

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
	// The parent (mpirun, mpiexec) going away ends this too.
	ppid := os.Getppid()
	unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0)
	if os.Getppid() != ppid {
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
	code, started, err := run(ctx, o, stdio)
	if err != nil {
		fmt.Fprintf(stdio.Err, "beorsh: %s: %v\n", o.host, err)
		if !started {
			endHydra(ppid)
		}
		return &applets.Exit{Code: failed}
	}
	if code != 0 {
		return &applets.Exit{Code: code}
	}
	return nil
}

var errHelp = errors.New("help")

type opts struct {
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
		if !strings.HasPrefix(a, "-") || a == "-" {
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

// run runs the command; started says whether it got as far as starting
// on the node.
func run(ctx context.Context, o opts, stdio applets.IO) (code int, started bool, err error) {
	me, err := user.Current()
	if err != nil { // not in the passwd file: what the environment says
		me = &user.User{Uid: fmt.Sprint(os.Getuid()), Username: os.Getenv("USER"), HomeDir: os.Getenv("HOME")}
		if me.Username == "" {
			me.Username = me.Uid
		}
	}
	if o.user != "" && o.user != me.Username && o.user != me.Uid {
		return 0, false, fmt.Errorf("cannot run as %s: beorsh runs commands as the calling user (%s)", o.user, me.Username)
	}
	cl, err := bproc.Dial(ctx, "")
	if err != nil {
		return 0, false, err
	}
	defer cl.Close()
	st, err := cl.Status(ctx)
	if err != nil {
		return 0, false, err
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
			return 0, false, errors.New(nn.Why)
		}
		return 0, false, err
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
		return 0, false, err
	}
	stop := forward(cmd)
	defer stop()
	err = cmd.Wait()
	var ee *bproc.ExitError
	switch {
	case err == nil:
		return 0, true, nil
	case errors.As(err, &ee) && ee.Signal == 0:
		return ee.Status, true, nil
	}
	return 0, true, err
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

// forward sends the signals beorsh receives to the remote command.
func forward(cmd *bproc.Cmd) func() {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGCONT)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case s := <-ch:
				cmd.Signal(s.(syscall.Signal))
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// endHydra ends the MPICH launcher that called beorsh for a host it
// could not start its proxy on. hydra (MPICH 4.0's mpiexec) waits
// forever for a proxy that never started — with ssh as with beorsh —
// once the launcher has failed; SIGTERM makes it stop the proxies that
// did start and exit. Other parents are left to act on the exit status.
func endHydra(ppid int) {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", ppid))
	if err != nil || !strings.HasPrefix(filepath.Base(exe), "mpiexec.hydra") || os.Getppid() != ppid {
		return
	}
	syscall.Kill(ppid, syscall.SIGTERM)
}
