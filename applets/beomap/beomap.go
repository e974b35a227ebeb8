// Package beomap implements beomap: print the job map the map parameters
// ask for now — a colon-separated list of node numbers, one per process
// in rank order, -1 the master (see pkg/beomap for the parameters, the
// variables and how the map is made).
//
//	beomap [--np N] [--all-cpus] [--all-nodes] [--all-local] [--no-local] [--no-over] [--exclude LIST] [--map LIST]
//
// The parameters are read from the environment (NP, ALL_CPUS, NO_LOCAL,
// EXCLUDE, BEOWULF_JOB_MAP, NO_OVER, …) and the options win over it.
package beomap

import (
	"context"
	"fmt"
	"os"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/beomap"
	"github.com/beo-cluster/beo/pkg/bproc"
)

const usage = "usage: beomap [--np N] [--all-cpus] [--all-nodes] [--all-local] [--no-local] [--no-over] [--exclude LIST] [--map LIST]"

// Run is the beomap applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet("beomap", usage, stdio.Err)
	flags := beomap.AddFlags(fs)
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &applets.Usage{Line: usage, Msg: "unexpected arguments"}
	}
	raw, err := flags.Merge(beomap.FromEnv(os.Getenv).Normalize())
	if err != nil {
		return &applets.Usage{Line: usage, Msg: err.Error()}
	}
	cl, err := bproc.Dial(ctx, "")
	if err != nil {
		return err
	}
	defer cl.Close()
	m, err := beomap.ForCaller(ctx, cl, raw, "", stdio.Err)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdio.Out, beomap.Format(m))
	return nil
}
