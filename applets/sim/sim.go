// Package sim implements `beo sim`: a simulated cluster on this machine
// (see pkg/sim) for trying beo without hardware, for test/cluster and for
// measuring scale.
//
//	beo sim [-n NODES] [-masters M] [-dir DIR] [-ping SECONDS] [-wait DURATION] [-stats=false] [-v] [command [args...]]
//
// The user who runs it administers the simulated cluster (bpctl, bplib),
// as root administers a real one. Unless -stats=false, the master also
// runs recvstats and the beostatus dashboard on loopback and every node
// sends its stats, so beostat works; the applet links (beo, bpsh, bpstat,
// …) are made in DIR/bin.
//
// -masters M runs M masters (on 127.0.0.1, 127.0.0.2, …) with
// `masterorder -` and their addresses: every node is up on the first
// and [up] on the others (pkg/sim; pkg/config, "Multiple masters"); the
// others' client sockets are DIR/masterI/bpmaster.sock.
//
// With a command, sim starts the cluster, waits for every node to be up
// (and to have sent stats), runs the command with BEO_SOCKET,
// BEOSTAT_URL, the MPI launchers' settings (DIR/mpi/env.sh, pkg/mpi) and
// DIR/bin first on PATH (so `beo sim -n 4 bpsh -a uname -r` and `beo sim
// -n 4 mpirun -np 4 ./a.out` just work), stops everything and exits with
// the command's status.
// Without one it prints the variables a second shell needs and runs until
// interrupted.
package sim

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/mpi"
	"github.com/beo-cluster/beo/pkg/sim"
)

const usage = "usage: beo sim [-n NODES] [-masters M] [-dir DIR] [-ping SECONDS] [-wait DURATION] [-stats=false] [-v] [command [args...]]"

// Run is the sim applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet("sim", usage, stdio.Err)
	n := fs.Int("n", 4, "number of simulated nodes")
	masters := fs.Int("masters", 1, "number of masters (masterorder -, the first primary; the others' sockets in DIR/masterI)")
	dir := fs.String("dir", "", "state directory (default: a new temporary directory, removed at exit)")
	ping := fs.Int("ping", 20, "pingtimeout in seconds")
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait for every node to be up")
	withStats := fs.Bool("stats", true, "run recvstats and the dashboard; every node sends stats (beostat)")
	views := fs.Bool("views", true, "as root, each node in its own overlay view of the host (what it writes stays in DIR/nodes/N); false: nodes see and write the host as it is")
	verbose := fs.Bool("v", false, "log the master's events to stderr")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if *masters < 1 || *masters > 254 {
		return &applets.Usage{Line: usage, Msg: fmt.Sprintf("-masters %d: want 1 to 254", *masters)}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	d := *dir
	if d == "" {
		t, err := os.MkdirTemp("", "beo-sim-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(t)
		d = t
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(stdio.Err, nil))
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	bin := filepath.Join(d, "bin")
	if err := applets.Links(ctx, self, bin); err != nil {
		return err
	}
	c, err := sim.Start(ctx, sim.Options{Nodes: *n, Dir: d, PingTimeout: time.Duration(*ping) * time.Second, Stats: *withStats, HostView: !*views, Log: log, Masters: *masters,
		MPIMTL: mpi.FindSystem(ctx).MTL("/dev")})
	if err != nil {
		return err
	}
	defer c.Stop()
	wctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	if err := c.WaitUp(wctx, *n); err != nil {
		return err
	}
	if *withStats {
		if err := c.WaitStats(wctx, *n); err != nil {
			return err
		}
	}
	cancel()
	vars := []string{bproc.SocketEnv + "=" + c.Socket}
	if c.StatsURL != "" {
		vars = append(vars, dashboard.URLEnv+"="+c.StatsURL)
	}
	mpiEnv := filepath.Join(c.MPIDir(), mpi.EnvFile)
	if fs.NArg() == 0 {
		fmt.Fprintf(stdio.Out, "%s up. In another shell:\n  export", applets.Plural(*n, "simulated node"))
		for _, v := range vars {
			fmt.Fprintf(stdio.Out, " %s", v)
		}
		fmt.Fprintf(stdio.Out, " PATH=%s:$PATH\n  . %s   # mpirun and mpirun.mpich on the nodes\n  bpstat; bpsh -a -p uname -r", bin, mpiEnv)
		if c.StatsURL != "" {
			fmt.Fprintf(stdio.Out, "; beostat -b\nDashboard: %s/", c.StatsURL)
		}
		for i := 1; i < *masters; i++ {
			fmt.Fprintf(stdio.Out, "\nMaster %d (%s, nodes [up] there): %s=%s", i, sim.MasterAddr(i), bproc.SocketEnv, c.MasterSocket(i))
		}
		fmt.Fprintf(stdio.Out, "\nCtrl-C stops the cluster.\n")
		<-ctx.Done()
		return nil
	}
	env := append(os.Environ(), vars...)
	env = append(env, c.MPIEnv()...)
	env = append(env, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return applets.CommandExit(applets.Command(ctx, self, bin, fs.Args(), env, stdio).Run())
}
