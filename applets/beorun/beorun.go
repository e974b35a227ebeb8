// Package beorun implements beorun and mpprun: run a program on the nodes
// of a job map (pkg/beomap) — beorun starts every entry at once, mpprun
// one after another, each when the one before it has ended.
//
//	beorun [map options] [-p] [-g] [-n] command [args...]
//	mpprun [map options] [-p] command [args...]
//
// The map options (--np, --all-cpus, --all-nodes, --all-local,
// --no-local, --no-over, --exclude LIST, --map LIST) and their variables
// (NP, ALL_CPUS, NO_LOCAL, EXCLUDE, BEOWULF_JOB_MAP, NO_OVER, …) are
// beomap's; options win. Process i of the map gets BPROC_RANK=i and
// BPROC_PROGNAME. -p (--prefix) puts "%3d: " and the node before every
// output line (a last line without a newline gets one); -g (--gather)
// prints each distinct output once after the nodes that produced it (as
// bpsh -g); -n gives the processes /dev/null as stdin. beorun duplicates
// its stdin to every process otherwise; mpprun never forwards stdin: its
// processes run one after another and one stream cannot be split
// sensibly between them, so each reads /dev/null (its usage says so).
// Exit status as bpsh: the process's for one, the highest for several,
// 255 for one that could not run, lost its node or died by a signal,
// named on stderr by rank and node ("rank 3 (node 0): killed by signal
// 9", since a node may hold several ranks). Bad map parameters are usage
// errors (exit 2), before the master is asked. The job's running —
// output, signals, statuses — is pkg/job's, shared with bpsh.
package beorun

import (
	"context"
	"os"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/beomap"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/job"
)

const (
	usage       = "usage: beorun [--np N] [--all-cpus] [--all-nodes] [--all-local] [--no-local] [--no-over] [--exclude LIST] [--map LIST] [-p] [-g] [-n] command [args...]"
	mpprunUsage = "usage: mpprun [--np N] [--all-cpus] [--all-nodes] [--all-local] [--no-local] [--no-over] [--exclude LIST] [--map LIST] [-p] command [args...]\n" +
		"       (the processes run one after another, each with stdin from /dev/null: mpprun does not forward stdin)"
	beorunName = "beorun"
	mpprunName = "mpprun"
)

// Run is the beorun applet: every process of the map at once.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	return run(ctx, beorunName, usage, args, stdio)
}

// Mpprun is the mpprun applet: the processes of the map one after another.
func Mpprun(ctx context.Context, args []string, stdio applets.IO) error {
	return run(ctx, mpprunName, mpprunUsage, args, stdio)
}

func run(ctx context.Context, name, usage string, args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet(name, usage, stdio.Err)
	flags := beomap.AddFlags(fs)
	var o job.Options
	for _, f := range []string{"p", "prefix"} {
		fs.BoolVar(&o.Prefix, f, false, `prefix each output line with its node ("%3d: ")`)
	}
	if name == beorunName {
		for _, f := range []string{"g", "gather"} {
			fs.BoolVar(&o.Gather, f, false, "print each distinct output once, after the nodes that produced it")
		}
		fs.BoolVar(&o.NullIn, "n", false, "stdin from /dev/null")
	}
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return &applets.Usage{Line: usage, Msg: "missing command"}
	}
	if o.Gather && o.Prefix {
		return &applets.Usage{Line: usage, Msg: "--gather prints whole outputs: not with --prefix"}
	}
	raw, err := flags.Merge(beomap.FromEnv(os.Getenv))
	if err != nil {
		return &applets.Usage{Line: usage, Msg: err.Error()}
	}
	cl, err := bproc.Dial(ctx, "")
	if err != nil {
		return err
	}
	defer cl.Close()
	m, _, err := beomap.ForCaller(ctx, cl, raw, "", stdio.Err)
	if err != nil {
		return err
	}
	o.OneByOne = name == mpprunName
	o.Ranks = true
	code := job.Run(ctx, cl, m, argv, o, job.Streams{In: stdio.In, Out: stdio.Out, Err: stdio.Err})
	if code != 0 {
		return &applets.Exit{Code: code}
	}
	return nil
}
