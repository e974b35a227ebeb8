// Package sim implements `beo sim`: a simulated cluster on this machine
// (see pkg/sim) for trying beo without hardware, for test/cluster and for
// measuring scale.
//
//	beo sim [-n NODES] [-dir DIR] [command [args...]]
//
// With a command, sim starts the cluster, waits for every node to be up,
// runs the command with BEO_SOCKET pointing at the simulated master (so
// `beo sim -n 4 bpsh -a uname -r` just works), stops everything and exits
// with the command's status. Without one it prints how to reach the
// cluster and runs until interrupted.
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/sim"
)

const usage = "usage: beo sim [-n NODES] [-dir DIR] [-ping SECONDS] [-wait DURATION] [command [args...]]"

// Run is the sim applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet("sim", usage, stdio.Err)
	n := fs.Int("n", 4, "number of simulated nodes")
	dir := fs.String("dir", "", "state directory (default: a new temporary directory, removed at exit)")
	ping := fs.Int("ping", 20, "pingtimeout in seconds")
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait for every node to be up")
	verbose := fs.Bool("v", false, "log the master's events to stderr")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
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
	c, err := sim.Start(ctx, sim.Options{Nodes: *n, Dir: d, PingTimeout: time.Duration(*ping) * time.Second, Log: log})
	if err != nil {
		return err
	}
	defer c.Stop()
	wctx, cancel := context.WithTimeout(ctx, *wait)
	err = c.WaitUp(wctx, *n)
	cancel()
	if err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stdio.Out, "%d simulated nodes up. In another shell:\n  export %s=%s\n  bpstat; bpsh -a uname -r\nCtrl-C stops the cluster.\n", *n, bproc.SocketEnv, c.Socket)
		<-ctx.Done()
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	name := fs.Arg(0)
	cmd := exec.CommandContext(ctx, name, fs.Args()[1:]...)
	if _, err := exec.LookPath(name); err != nil {
		// Not on PATH: an applet name (`beo sim bpsh …` without symlinks).
		cmd = exec.CommandContext(ctx, self, fs.Args()...)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.In, stdio.Out, stdio.Err
	cmd.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &applets.Exit{Code: ee.ExitCode()}
	}
	return err
}
