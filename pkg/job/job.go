// Package job runs one program on a list of nodes — a parallel job — as
// bpsh, beorun and mpprun do. Entry i of the list is rank i: the process
// there gets BPROC_RANK=i and BPROC_PROGNAME (the program's base name). A
// node may appear more than once (a job map's `0:0:1`), and -1 is the
// master (run locally).
//
// stdin is duplicated to every process (unless NullIn or NoIO, or it is
// /dev/null: then the processes read /dev/null and no stream is opened);
// stdout and stderr come back separately, as they come (Line: whole lines;
// Prefix: each line after "%3d: " and its node), node by node in node
// number order (Seq, with a divider line before each under Divider), or gathered
// (Gather): every process's output is kept (Buf bytes in memory, the rest
// in an unlinked temporary file) and, once all have ended, each distinct
// output is printed once under the list of nodes that produced it, as
// clush -b and dshbak -c do:
//
//	----------------
//	0-2,5 (4)
//	----------------
//	Linux 6.1.0-28-amd64
//
// stdout and stderr are gathered apart, each to its own stream. OneByOne
// (mpprun) starts each process when the one before it has ended, stdin
// from /dev/null.
//
// Signals: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGCONT
// received are sent to every remote process; SIGTSTP (Ctrl-Z) sends
// SIGSTOP to every remote process and then stops this process. Under
// OneByOne a terminating signal also stops further starts.
//
// Under Prefix a process's last line, when it ends without a newline, is
// printed with its prefix and a newline added, as a line of its own (so
// `beorun -p --np 3 printf x` prints three lines); under Line alone it is
// printed as it came.
//
// The status Run returns: the remote status for one process, the highest
// for many, 255 when a process could not run, lost its node or died by a
// signal, with a line on stderr naming the node as BProc's bpsh does
// ("N: error"), or, under Ranks (beorun, mpprun, whose entries are ranks
// and where one node may hold several), the rank and its node
// ("rank 3 (node 0): error", "rank 0 (master): error").
package job

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/beo-cluster/beo/pkg/bproc"
)

// Streams are a job's standard streams.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// Options say how a job's processes are started and their output shown.
type Options struct {
	NoIO     bool // forward no I/O at all (bpsh -N)
	NullIn   bool // remote stdin from /dev/null (bpsh -n)
	Line     bool // whole lines only (bpsh -L)
	Prefix   bool // "%3d: " before each line (bpsh -p); implies Line
	Seq      bool // output node by node, by node number (bpsh -s; one node's ranks in rank order)
	Divider  bool // a divider line before each node's output (bpsh -d); implies Seq
	Gather   bool // each distinct output once, with its nodes (bpsh -g)
	OneByOne bool // one process after another (mpprun)
	Ranks    bool // name a failed process by rank and node on stderr (beorun, mpprun)
	// Buf is how many bytes of a process's output Seq and Gather keep in
	// memory before spilling to a temporary file (default 1 MiB).
	Buf int
	// Remote redirections, on the node (bpsh -I -O -E).
	RemoteIn, RemoteOut, RemoteErr string
	// Env is the processes' environment before BPROC_RANK and
	// BPROC_PROGNAME; nil means os.Environ().
	Env []string
	// NoNode, if set, is asked about each process that could not start
	// because the master knows no such node (bproc.CodeNotFound for its
	// node): a caller that sent the list unchecked (bpsh's one node)
	// checks it now and reports it itself, returning true; the process
	// then counts as no failure here.
	NoNode func(node int) bool
	// Signals, if set, has caught the signals the job forwards since
	// before Run (Catch); Run takes them over.
	Signals *Catcher
}

// proc is one process of the job.
type proc struct {
	rank     int
	node     int
	cmd      *bproc.Cmd
	out, err *output
	gout     *gathered
	gerr     *gathered
	stdin    *io.PipeWriter
	result   error
	ran      bool
}

// Run runs argv on every node of list and returns the job's exit status
// (see the package doc). Problems that concern a process are reported on
// s.Err as "N: error" ("rank R (node N): error" under Ranks) and counted
// in the status.
func Run(ctx context.Context, cl *bproc.Client, list []int, argv []string, o Options, s Streams) int {
	if o.Buf <= 0 {
		o.Buf = 1 << 20
	}
	o.Line = o.Line || o.Prefix
	o.Seq = (o.Seq || o.Divider) && !o.Gather && !o.OneByOne
	outLock, errLock := &sync.Mutex{}, &sync.Mutex{}
	if sameFile(s.Out, s.Err) {
		errLock = outLock
	}
	procs := make([]*proc, len(list))
	var seq *sequencer
	if o.Seq {
		seq = &sequencer{}
	}
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	env = envWithout(env, "BPROC_RANK", "BPROC_PROGNAME")
	for i, n := range list {
		cmd := cl.Command(n, argv[0], argv[1:]...)
		cmd.Env = append(env[:len(env):len(env)], "BPROC_RANK="+strconv.Itoa(i), "BPROC_PROGNAME="+filepath.Base(argv[0]))
		cmd.NoIO = o.NoIO
		cmd.RemoteStdin, cmd.RemoteStdout, cmd.RemoteStderr = o.RemoteIn, o.RemoteOut, o.RemoteErr
		p := &proc{rank: i, node: n, cmd: cmd}
		switch {
		case o.NoIO:
		case o.Gather:
			p.gout, p.gerr = &gathered{limit: o.Buf}, &gathered{limit: o.Buf}
			cmd.Stdout, cmd.Stderr = p.gout, p.gerr
		default:
			p.out = newOutput(n, s.Out, outLock, o, seq)
			p.err = newOutput(n, s.Err, errLock, o, seq)
			cmd.Stdout, cmd.Stderr = p.out, p.err
		}
		procs[i] = p
	}
	if seq != nil { // by node number, as BProc's bpsh -s sorts them
		byNode := slices.Clone(procs)
		slices.SortStableFunc(byNode, func(a, b *proc) int { return cmp.Compare(a.node, b.node) })
		for _, p := range byNode {
			seq.add(p, o.Divider)
		}
	}
	// stdin is read once a process has started: a job none of whose
	// processes can start leaves its caller's stdin unread.
	started, ended := make(chan struct{}), make(chan struct{})
	defer close(ended)
	var startOnce sync.Once
	if !o.NoIO && !o.NullIn && !o.OneByOne && o.RemoteIn == "" && s.In != nil && !DevNull(s.In) {
		fanIn(s.In, procs, started, ended)
	}
	if seq != nil {
		seq.start()
	}
	var stopped atomic.Bool
	stopSignals := forwardSignals(o.Signals, procs, &stopped)
	defer stopSignals()

	runOne := func(p *proc) {
		p.ran = true
		if p.result = p.cmd.Start(); p.result == nil {
			startOnce.Do(func() { close(started) })
			p.result = p.cmd.Wait()
		}
		if p.stdin != nil {
			p.stdin.CloseWithError(io.ErrClosedPipe)
		}
		if p.out != nil {
			p.out.close()
			p.err.close()
		}
		if seq != nil {
			seq.done(p)
		}
	}
	if o.OneByOne {
		for _, p := range procs {
			if stopped.Load() || ctx.Err() != nil {
				break
			}
			runOne(p)
		}
	} else {
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runOne(p)
			}()
		}
		wg.Wait()
	}
	if o.Gather {
		printGathered(s.Out, procs, func(p *proc) *gathered { return p.gout })
		printGathered(s.Err, procs, func(p *proc) *gathered { return p.gerr })
	}
	return exitCode(procs, s.Err, o.NoNode, o.Ranks)
}

// exitCode reports failures and computes the job's status; noNode (if
// set) takes the processes whose node the master does not know; ranks
// names the processes by rank.
func exitCode(procs []*proc, stderr io.Writer, noNode func(int) bool, ranks bool) int {
	code := 0
	for _, p := range procs {
		if !p.ran {
			continue
		}
		c := 0
		who := func(node int) string { // as a failure line names the process
			switch {
			case !ranks:
				return strconv.Itoa(node)
			case node == -1: // the master
				return fmt.Sprintf("rank %d (master)", p.rank)
			}
			return fmt.Sprintf("rank %d (node %d)", p.rank, node)
		}
		var ee *bproc.ExitError
		var ne *bproc.NodeError
		switch {
		case p.result == nil:
		case errors.As(p.result, &ee) && ee.Signal == 0:
			c = ee.Status
			if ee.OOMKills > 0 { // a process of the job was killed: say why, keep the status
				fmt.Fprintf(stderr, "%s: %s\n", who(ee.Node), ee.Reason())
			}
		case errors.As(p.result, &ee):
			fmt.Fprintf(stderr, "%s: %s\n", who(ee.Node), ee.Reason())
			c = 255
		case errors.As(p.result, &ne) && ne.Code == bproc.CodeNotFound && ne.Node == p.node && noNode != nil && noNode(p.node):
		case errors.As(p.result, &ne):
			fmt.Fprintf(stderr, "%s: %s\n", who(ne.Node), ne.Msg)
			c = 255
		default:
			fmt.Fprintf(stderr, "%s: %v\n", who(p.node), p.result)
			c = 255
		}
		if len(procs) == 1 {
			return c
		}
		code = max(code, c)
	}
	return code
}

// fanIn duplicates r to every process's stdin, from the moment started
// is closed (a process has started) until r ends or, without a start,
// ended is. A slow node slows the others: each gets every byte.
func fanIn(r io.Reader, procs []*proc, started, ended <-chan struct{}) {
	ws := make([]*io.PipeWriter, 0, len(procs))
	for _, p := range procs {
		pr, pw := io.Pipe()
		p.cmd.Stdin, p.stdin = pr, pw
		ws = append(ws, pw)
	}
	go func() {
		select {
		case <-started:
		case <-ended:
			for _, w := range ws {
				w.Close()
			}
			return
		}
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				for _, w := range ws {
					w.Write(buf[:n]) // a finished process's pipe errors; the others go on
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

// DevNull reports whether r is /dev/null: then, as with NullIn, the remote
// processes read /dev/null and no stdin stream is opened for them.
func DevNull(r io.Reader) bool {
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
