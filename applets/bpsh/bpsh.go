// Package bpsh implements bpsh, BProc's remote shell: run a program on one
// node, a list of nodes, or every node, with stdio forwarded.
//
//	bpsh [-a|-A] [-nNLpsdgt] [-b bytes] [-I file] [-O file] [-E file] [nodespec] command [args...]
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
// -g gathers: each node's output is kept until every node has ended,
// then each distinct output is printed once after a header naming the
// nodes that produced it (as clush -b and dshbak -c do), stdout and
// stderr apart. The running of a job is pkg/job's, shared with beorun and
// mpprun.
//
// -b N sets how many bytes of a node's output -s and -g keep in memory
// while earlier nodes are still printing; beyond that it spills to a
// temporary file, so no output is ever dropped.
package bpsh

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/job"
	"github.com/beo-cluster/beo/pkg/nodespec"
)

const usage = "usage: bpsh [-a|-A] [-n] [-N] [-L] [-p] [-s] [-d] [-g] [-b bytes] [-I file] [-O file] [-E file] [-t] [nodespec] command [args...]"

type opts struct {
	all, allNotDown, nullIn, noIO, line, prefix, seq, divider, gather, timing bool
	buf                                                                       int
	in, out, errf                                                             string
}

// Run is the bpsh applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	// The job's signals are caught from here on (job.Catch), while the
	// flags are read and the connection is made; the job waits for them
	// before any process starts.
	sig := job.Catch()
	defer sig.Release() // unless the job took them over
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
	fs.BoolVar(&o.gather, "g", false, "gather: print each distinct output once, after the nodes that produced it")
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
	if len(rest) > 0 && rest[0] == "--" { // bpsh 0 -- cmd: the command's words start here
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return &applets.Usage{Line: usage, Msg: "missing command"}
	}
	if o.gather && (o.line || o.prefix || o.seq || o.divider || o.noIO) {
		return &applets.Usage{Line: usage, Msg: "-g gathers whole outputs: not with -L, -p, -s, -d or -N"}
	}
	if o.buf <= 0 {
		return &applets.Usage{Line: usage, Msg: "-b wants a positive byte count"}
	}
	start := time.Now()
	code, err := run(ctx, o, spec, rest, stdio, sig)
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
// that the node spec -1 (the master) is not taken for a flag. A "--"
// ends the flags and is dropped; one after the node spec is dropped too
// (bpsh -p 0 -- echo -x).
func splitArgs(args []string) (flags, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return args[:i], args[i+1:]
		}
		if !strings.HasPrefix(a, "-") || len(a) < 2 || (a[1] >= '0' && a[1] <= '9') {
			return args[:i], args[i:]
		}
		switch strings.TrimLeft(a, "-") {
		case "b", "I", "O", "E":
			i++ // the value
		}
	}
	return args, nil
}

func run(ctx context.Context, o opts, spec string, argv []string, stdio applets.IO, sig *job.Catcher) (int, error) {
	cl, err := bproc.Dial(ctx, "")
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	jo := job.Options{
		NoIO: o.noIO, NullIn: o.nullIn, Line: o.line, Prefix: o.prefix, Seq: o.seq, Divider: o.divider,
		Gather: o.gather, Buf: o.buf, RemoteIn: o.in, RemoteOut: o.out, RemoteErr: o.errf,
		Signals: sig,
	}
	s := job.Streams{In: stdio.In, Out: stdio.Out, Err: stdio.Err}
	if n, ok := oneNode(spec); ok {
		// One node by number: the master checks it exists as it starts
		// the process, so the cluster's states are asked for only if it
		// does not — to say so as nodespec would have — and the run
		// spares a round trip.
		var bad error
		jo.NoNode = func(int) bool {
			if st, err := cl.States(ctx); err == nil {
				_, bad = nodespec.Parse(spec, st)
			}
			return bad != nil
		}
		code := job.Run(ctx, cl, []int{n}, argv, jo, s)
		if bad != nil {
			return 0, bad
		}
		return code, nil
	}
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
	return job.Run(ctx, cl, list, argv, jo, s), nil
}

// oneNode reports whether spec is one compute node by its decimal
// number, and which: the one spec the master can check by itself.
func oneNode(spec string) (int, bool) {
	if spec == "" || len(spec) > 9 || strings.Trim(spec, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(spec)
	return n, err == nil
}
