// Package bpsh implements bpsh, BProc's remote shell: run a program on one
// node, a list of nodes, or every node, with stdio forwarded.
//
//	bpsh [-a|-A] [-nNLpsdt] [-b bytes] [-I file] [-O file] [-E file] [nodespec] command [args...]
//
// stdin is duplicated to every node (unless -n or -N, or it is /dev/null:
// then the remote processes read /dev/null and no stream is opened for
// it); stdout and stderr
// come back separately. Exit status: the remote status for one node, the
// highest for many, 255 when a node failed or a process died by a signal
// (with "N: error" on stderr). Each process gets BPROC_RANK (its index in
// the node list) and BPROC_PROGNAME.
//
// Signals: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGCONT
// received by bpsh are sent to every remote process; SIGTSTP (Ctrl-Z) sends
// SIGSTOP to every remote process and then stops bpsh itself. A SIGSTOP
// sent straight to bpsh cannot be seen by it (the kernel stops it at
// once): bpmaster notices bpsh stopped, within a tenth of a second, and
// stops the remote processes itself. The SIGCONT that resumes bpsh is
// forwarded.
//
// Each remote process, and each child it forks on its node, has a ghost
// here, a child of bpsh showing the remote command and "[node N]" (see
// pkg/ghost): kill, pkill, top and pstree on it act on that one remote
// process. A process that ends within a few milliseconds gets none.
//
// -b N sets how many bytes of a node's output -s keeps in memory while
// earlier nodes are still printing; beyond that it spills to a temporary
// file, so no output is ever dropped.
package bpsh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/nodespec"
)

const usage = "usage: bpsh [-a|-A] [-n] [-N] [-L] [-p] [-s] [-d] [-b bytes] [-I file] [-O file] [-E file] [-t] [nodespec] command [args...]"

type opts struct {
	all, allNotDown, nullIn, noIO, line, prefix, seq, divider, timing bool
	buf                                                               int
	in, out, errf                                                     string
}

// Run is the bpsh applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	var o opts
	fs := applets.NewFlagSet("bpsh", usage, stdio.Err)
	fs.BoolVar(&o.all, "a", false, "run on all nodes that are up")
	fs.BoolVar(&o.allNotDown, "A", false, "run on all nodes that are not down")
	fs.BoolVar(&o.nullIn, "n", false, "stdin from /dev/null")
	fs.BoolVar(&o.noIO, "N", false, "no I/O forwarding")
	fs.BoolVar(&o.line, "L", false, "line-buffer output")
	fs.BoolVar(&o.prefix, "p", false, `prefix each line with the node number ("%3d: "), implies -L`)
	fs.BoolVar(&o.seq, "s", false, "print output node by node, in node order")
	fs.BoolVar(&o.divider, "d", false, "print a divider before each node's output, implies -s")
	fs.IntVar(&o.buf, "b", 1<<20, "bytes of output per node kept in memory by -s before spilling to disk")
	fs.StringVar(&o.in, "I", "", "remote stdin from this file on the node")
	fs.StringVar(&o.out, "O", "", "remote stdout to this file on the node")
	fs.StringVar(&o.errf, "E", "", "remote stderr to this file on the node")
	fs.BoolVar(&o.timing, "t", false, "print the elapsed time on stderr")
	flags, rest := splitArgs(args)
	if err := applets.ParseFlags(fs, usage, flags); err != nil {
		return err
	}
	rest = append(fs.Args(), rest...)
	if o.all && o.allNotDown {
		return &applets.Usage{Line: usage, Msg: "-a and -A exclude each other"}
	}
	spec := ""
	switch {
	case o.all:
		spec = "allup"
	case o.allNotDown:
		spec = "allnotdown"
	default:
		if len(rest) == 0 {
			return &applets.Usage{Line: usage, Msg: "missing nodespec"}
		}
		spec, rest = rest[0], rest[1:]
	}
	if len(rest) == 0 {
		return &applets.Usage{Line: usage, Msg: "missing command"}
	}
	if o.buf <= 0 {
		return &applets.Usage{Line: usage, Msg: "-b wants a positive byte count"}
	}
	o.line = o.line || o.prefix
	o.seq = o.seq || o.divider
	start := time.Now()
	code, err := run(ctx, o, spec, rest, stdio)
	if o.timing {
		fmt.Fprintf(stdio.Err, "elapsed: %.3f s\n", time.Since(start).Seconds())
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return &applets.Exit{Code: code}
	}
	return nil
}

// splitArgs separates bpsh's own flags from the node spec and command, so
// that the node spec -1 (the master) is not taken for a flag.
func splitArgs(args []string) (flags, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || len(a) < 2 || (a[1] >= '0' && a[1] <= '9') {
			return args[:i], args[i:]
		}
		switch strings.TrimLeft(a, "-") {
		case "b", "I", "O", "E":
			i++ // the value
		}
	}
	return args, nil
}

func run(ctx context.Context, o opts, spec string, argv []string, stdio applets.IO) (int, error) {
	cl, err := bproc.Dial(ctx, "")
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	st, err := cl.States(ctx)
	if err != nil {
		return 0, err
	}
	list, err := nodespec.Parse(spec, st)
	if err != nil {
		return 0, err
	}
	if len(list) == 0 {
		return 0, fmt.Errorf("no nodes match %q", spec)
	}
	outLock, errLock := &sync.Mutex{}, &sync.Mutex{}
	if sameFile(stdio.Out, stdio.Err) {
		errLock = outLock
	}
	jobs := make([]*job, len(list))
	var seq *sequencer
	if o.seq {
		seq = &sequencer{}
	}
	env := os.Environ()
	for i, n := range list {
		cmd := cl.Command(n, argv[0], argv[1:]...)
		cmd.Env = append(envWithout(env, "BPROC_RANK", "BPROC_PROGNAME"),
			"BPROC_RANK="+strconv.Itoa(i), "BPROC_PROGNAME="+filepath.Base(argv[0]))
		cmd.NoIO = o.noIO
		cmd.RemoteStdin, cmd.RemoteStdout, cmd.RemoteStderr = o.in, o.out, o.errf
		j := &job{node: n, cmd: cmd}
		if !o.noIO {
			j.out = newOutput(n, stdio.Out, outLock, o, seq)
			j.err = newOutput(n, stdio.Err, errLock, o, seq)
			cmd.Stdout, cmd.Stderr = j.out, j.err
			if seq != nil {
				seq.add(j, o.divider)
			}
		}
		jobs[i] = j
	}
	if !o.noIO && !o.nullIn && o.in == "" && stdio.In != nil && !devNull(stdio.In) {
		fanIn(stdio.In, jobs)
	}
	if seq != nil {
		seq.start()
	}
	stopSignals := forwardSignals(jobs)
	defer stopSignals()

	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j.result = j.cmd.Run()
			if j.stdin != nil {
				j.stdin.CloseWithError(io.ErrClosedPipe)
			}
			if j.out != nil {
				j.out.close()
				j.err.close()
			}
			if seq != nil {
				seq.done(j)
			}
		}()
	}
	wg.Wait()
	return exitCode(jobs, stdio.Err), nil
}

type job struct {
	node     int
	cmd      *bproc.Cmd
	out, err *output
	stdin    *io.PipeWriter
	result   error
}

// exitCode reports failures and computes bpsh's status.
func exitCode(jobs []*job, stderr io.Writer) int {
	code := 0
	for _, j := range jobs {
		c := 0
		var ee *bproc.ExitError
		var ne *bproc.NodeError
		switch {
		case j.result == nil:
		case errors.As(j.result, &ee) && ee.Signal == 0:
			c = ee.Status
		case errors.As(j.result, &ee):
			fmt.Fprintf(stderr, "%d: %s\n", ee.Node, ee.Reason())
			c = 255
		case errors.As(j.result, &ne):
			fmt.Fprintf(stderr, "%d: %s\n", ne.Node, ne.Msg)
			c = 255
		default:
			fmt.Fprintf(stderr, "%d: %v\n", j.node, j.result)
			c = 255
		}
		if len(jobs) == 1 {
			return c
		}
		code = max(code, c)
	}
	return code
}

// fanIn duplicates r to every job's stdin. A slow node slows the others:
// each gets every byte.
func fanIn(r io.Reader, jobs []*job) {
	ws := make([]*io.PipeWriter, 0, len(jobs))
	for _, j := range jobs {
		pr, pw := io.Pipe()
		j.cmd.Stdin, j.stdin = pr, pw
		ws = append(ws, pw)
	}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				for _, w := range ws {
					w.Write(buf[:n]) // a finished job's pipe errors; the others go on
				}
			}
			if err != nil {
				for _, w := range ws {
					w.Close()
				}
				return
			}
		}
	}()
}

// forwardSignals relays signals bpsh receives to every remote process.
func forwardSignals(jobs []*job) func() {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGCONT, syscall.SIGTSTP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case s := <-ch:
				sig := s.(syscall.Signal)
				if sig == syscall.SIGTSTP {
					sig = syscall.SIGSTOP
				}
				for _, j := range jobs {
					if j.cmd.PID != 0 {
						j.cmd.Signal(sig)
					}
				}
				if s == syscall.SIGTSTP {
					signal.Reset(syscall.SIGTSTP)
					syscall.Kill(os.Getpid(), syscall.SIGTSTP)
					signal.Notify(ch, syscall.SIGTSTP)
				}
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

func envWithout(env []string, names ...string) []string {
	out := make([]string, 0, len(env)+len(names))
	for _, e := range env {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(e, n+"=") {
				keep = false
			}
		}
		if keep {
			out = append(out, e)
		}
	}
	return out
}

// devNull reports whether r is /dev/null: then, as with -n, the remote
// processes read /dev/null and no stdin stream is opened for them.
func devNull(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(fi, null)
}

func sameFile(a, b io.Writer) bool {
	fa, ok1 := a.(*os.File)
	fb, ok2 := b.(*os.File)
	if !ok1 || !ok2 {
		return a == b
	}
	sa, err1 := fa.Stat()
	sb, err2 := fb.Stat()
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
