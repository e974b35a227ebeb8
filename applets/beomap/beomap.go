// Package beomap implements beomap: print the job map the map parameters
// ask for now — a colon-separated list of node numbers, one per process
// in rank order, -1 the master (see pkg/beomap for the parameters, the
// variables and how the map is made).
//
//	beomap [--np N] [--all-cpus] [--all-nodes] [--all-local] [--no-local] [--no-over] [--exclude LIST] [--map LIST]
//
// The parameters are read from the environment (NP, ALL_CPUS, NO_LOCAL,
// EXCLUDE, BEOWULF_JOB_MAP, NO_OVER, …) and the options win over it: an
// option replaces its variable and every variable contradicting it;
// contradicting options, contradicting variables and bad values (NP
// beyond 1..1048576, an empty item in a list, an empty --map) are usage
// errors (exit 2) naming the option or variable (pkg/beomap says which
// contradict).
//
// --hostfile openmpi|mpich prints the map as a hostfile of that MPI
// instead (pkg/mpi): given as many processes as the map has entries, the
// stock mpirun then puts rank i where entry i says:
//
//	beomap --np 8 --no-local --hostfile openmpi > hosts; mpirun --hostfile hosts -np 8 ./a.out
package beomap

import (
	"context"
	"fmt"
	"os"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/beomap"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/mpi"
)

const usage = "usage: beomap [--np N] [--all-cpus] [--all-nodes] [--all-local] [--no-local] [--no-over] [--exclude LIST] [--map LIST] [--hostfile openmpi|mpich]"

// Run is the beomap applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet("beomap", usage, stdio.Err)
	flags := beomap.AddFlags(fs)
	hostfile := fs.String("hostfile", "", "print the map as a hostfile for openmpi or mpich")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	var flavor mpi.Flavor
	if *hostfile != "" {
		f, err := mpi.ParseFlavor(*hostfile)
		if err != nil {
			return &applets.Usage{Line: usage, Msg: err.Error()}
		}
		flavor = f
	}
	if fs.NArg() != 0 {
		return &applets.Usage{Line: usage, Msg: "unexpected arguments"}
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
	m, nodes, err := beomap.ForCaller(ctx, cl, raw, "", stdio.Err)
	if err != nil {
		return err
	}
	if *hostfile != "" {
		_, err := stdio.Out.Write(mpi.Hostfile(flavor, m, mpi.Addrs(nodes)))
		return err
	}
	fmt.Fprintln(stdio.Out, beomap.Format(m))
	return nil
}
