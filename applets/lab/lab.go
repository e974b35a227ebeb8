// Package lab implements `beo lab`: a real beo cluster on this machine —
// `beo master` in a private network namespace and N QEMU machines that
// PXE-boot from it (see pkg/lab). Nothing is configured by hand: the
// config is the built-in default plus one node line per machine, written
// into a private state directory together with the keys, logs and boot
// files; no file of the host's /etc or /var is read or written, and no
// host network interface is touched.
//
//	beo lab [-n NODES] [-keep] [-dir DIR] [-accel kvm|tcg] [-mem SIZE] [-wait DURATION] [-timeline] [-v] [command [args...]]
//
// With a command, lab waits until every node is up, runs the command with
// BEO_SOCKET pointing at the lab's master and the applet symlinks (bpsh,
// bpstat, …) first on PATH — so `beo lab -n 3 sh -c 'bpstat; bpsh -a uname
// -a'` just works — then stops everything and exits with the command's
// status. Without one it prints how to reach the cluster and runs until
// interrupted. Every process it started is stopped by pid and the
// namespace deleted on the way out; -keep keeps the state directory (serial
// consoles, master and node logs) and prints where it is.
//
// It needs root and qemu-system-x86_64; without them it says so (`make demo`
// falls back to `beo sim`).
package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/lab"
)

const usage = "usage: beo lab [-n NODES] [-keep] [-dir DIR] [-accel kvm|tcg] [-mem SIZE] [-wait DURATION] [-timeline] [-v] [command [args...]]"

// Run is the lab applet.
func Run(ctx context.Context, args []string, stdio applets.IO) (err error) {
	fs := applets.NewFlagSet("lab", usage, stdio.Err)
	n := fs.Int("n", 2, "number of QEMU nodes (each needs ~250 MB of RAM)")
	keep := fs.Bool("keep", false, "keep the state directory (logs, serial consoles) and print its path")
	dir := fs.String("dir", "", "state directory (default: a new temporary directory)")
	accel := fs.String("accel", "", "QEMU accelerator kvm or tcg (default: probe KVM, else tcg; $"+lab.AccelEnv+")")
	mem := fs.String("mem", "256M", "memory per node")
	wait := fs.Duration("wait", 5*time.Minute, "how long to wait for every node to be up")
	verbose := fs.Bool("v", false, "log the lab's steps to stderr")
	timeline := fs.Bool("timeline", false, "print each node's boot timeline (qemu → DHCP → iPXE script → kernel → /init → bpslave → up) to stderr")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if *n < 1 || *n > 64 {
		return &applets.Usage{Line: usage, Msg: fmt.Sprintf("-n %d: want 1 to 64", *n)}
	}
	if *accel != "" && *accel != "kvm" && *accel != "tcg" {
		return &applets.Usage{Line: usage, Msg: fmt.Sprintf("-accel %q: want kvm or tcg", *accel)}
	}
	if err := lab.Check(true); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	d := *dir
	if d == "" {
		if d, err = os.MkdirTemp("", "beo-lab-"); err != nil {
			return err
		}
	}
	defer func() {
		if *keep {
			fmt.Fprintf(stdio.Err, "lab: state kept in %s\n", d)
		} else if *dir == "" {
			os.RemoveAll(d)
		}
	}()
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(stdio.Err, nil))
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	fmt.Fprintf(stdio.Err, "lab: starting beo master and %d QEMU nodes (state in %s)\n", *n, d)
	c, err := lab.StartCluster(ctx, lab.ClusterOptions{Exe: self, Dir: d, Listed: *n, Accel: *accel, Memory: *mem, Boot: true, Log: log})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	fmt.Fprintf(stdio.Err, "lab: namespace %s, accelerator %s (%s)\n", c.Lab.NS, c.Accel, c.AccelWhy)
	nodes := make([]int, *n)
	for i := range nodes {
		nodes[i] = i
	}
	wctx, cancel := context.WithTimeout(ctx, *wait)
	err = c.WaitUp(wctx, nodes...)
	cancel()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Err, "lab: %d nodes up after %v\n", *n, time.Since(start).Round(100*time.Millisecond))
	if *timeline {
		for _, m := range c.Machines {
			fmt.Fprintf(stdio.Err, "lab: %s (%s) boot timeline:\n%s", m.VM.Name, m.VM.MAC, lab.FormatTimeline(c.Timeline(m)))
		}
	}
	bin := filepath.Join(d, "bin")
	if err := links(ctx, self, bin); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stdio.Out, "%d nodes up. In another shell:\n  export %s=%s PATH=%s:$PATH\n  bpstat; bpsh -a uname -r\nCtrl-C stops the cluster.\n",
			*n, bproc.SocketEnv, c.Socket, bin)
		<-ctx.Done()
		return nil
	}
	name := fs.Arg(0)
	path := bin + string(os.PathListSeparator) + os.Getenv("PATH")
	env := append(os.Environ(), bproc.SocketEnv+"="+c.Socket, "PATH="+path)
	cmd := exec.CommandContext(ctx, name, fs.Args()[1:]...)
	if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
		if _, err := exec.LookPath(name); err != nil {
			// Neither an applet nor on PATH: let beo say so.
			cmd = exec.CommandContext(ctx, self, fs.Args()...)
		}
	} else {
		cmd = exec.CommandContext(ctx, filepath.Join(bin, name), fs.Args()[1:]...)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.In, stdio.Out, stdio.Err
	cmd.Env = env
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if code < 0 { // killed by a signal
			code = 255
		}
		return &applets.Exit{Code: code}
	}
	return err
}

// links makes the applet symlinks (bpsh, bpstat, …) in dir with
// `beo install-links`, so commands run by the lab find them on PATH.
func links(ctx context.Context, self, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, "install-links", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("install-links %s: %w %s", dir, err, out)
	}
	return nil
}
