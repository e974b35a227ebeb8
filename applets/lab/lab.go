// Package lab implements `beo lab`: a real beo cluster on this machine —
// `beo master` in a private network namespace and N QEMU machines that
// PXE-boot from it (see pkg/lab). Nothing is configured by hand: the
// config is the built-in default with one node per machine, written
// into a private state directory together with the keys, logs and boot
// files; no file of the host's /etc or /var is read or written, and no
// host network interface is touched.
//
//	beo lab [-n NODES] [-keep] [-dir DIR] [-accel kvm|tcg] [-mem SIZE] [-wait DURATION] [-timeline] [-v] [command [args...]]
//
// With a command, lab waits until every node is up, runs the command with
// BEO_SOCKET pointing at the lab's master, BEOSTAT_URL at its dashboard
// (which listens in the namespace: lab forwards a loopback port of the
// host's to it) and the applet symlinks (bpsh, bpstat, …) first on PATH —
// so `beo lab -n 3 sh -c 'bpstat; bpsh -a -p uname -a; beostat -b'` just
// works — then stops everything and exits with the command's status.
// Without one it prints the variables a second shell needs and runs until
// interrupted. Every process it started is stopped by pid and the
// namespace deleted on the way out; -keep keeps the state directory (serial
// consoles, master and node logs) and prints where it is.
//
// It needs root and qemu-system-x86_64; without them it says so (`make demo`
// falls back to `beo sim`).
package lab

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/dashboard"
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
	fmt.Fprintf(stdio.Err, "lab: starting beo master and %s (state in %s)\n", applets.Plural(*n, "QEMU node"), d)
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
	// Power-on is the first QEMU's start: the time before it is the
	// master's (boot package, KVM probe), not the nodes'.
	up, on := time.Now(), c.Machines[0].Started
	fmt.Fprintf(stdio.Err, "lab: %s up %v after power-on (%v after start)\n", applets.Plural(*n, "node"),
		up.Sub(on).Round(100*time.Millisecond), up.Sub(start).Round(100*time.Millisecond))
	if *timeline {
		for _, m := range c.Machines {
			fmt.Fprintf(stdio.Err, "lab: %s (%s) boot timeline:\n%s", m.VM.Name, m.VM.MAC, lab.FormatTimeline(c.Timeline(m)))
		}
	}
	bin := filepath.Join(d, "bin")
	if err := applets.Links(ctx, self, bin); err != nil {
		return err
	}
	// The dashboard listens on the namespace's loopback: forward a port
	// of the host's to it, for beostat ($BEOSTAT_URL) and a browser.
	dash, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fctx, stopForward := context.WithCancel(ctx)
	forwarded := make(chan error, 1)
	go func() { forwarded <- c.Lab.Forward(fctx, dash, dashboard.DefaultAddr) }()
	defer func() {
		stopForward()
		<-forwarded
	}()
	statsURL := "http://" + dash.Addr().String()
	waitStats(ctx, statsURL, *n, 15*time.Second)
	vars := []string{bproc.SocketEnv + "=" + c.Socket, dashboard.URLEnv + "=" + statsURL}
	if fs.NArg() == 0 {
		fmt.Fprintf(stdio.Out, "%s up. In another shell:\n  export %s %s PATH=%s:$PATH\n  bpstat; bpsh -a -p uname -r; beostat -b\nDashboard: %s/\nCtrl-C stops the cluster.\n",
			applets.Plural(*n, "node"), vars[0], vars[1], bin, statsURL)
		<-ctx.Done()
		return nil
	}
	env := append(os.Environ(), vars...)
	env = append(env, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return applets.CommandExit(applets.Command(ctx, self, bin, fs.Args(), env, stdio).Run())
}

// waitStats waits, at most d, until n nodes have sent stats to the
// master's dashboard at url: a node's sendstats starts with its bpslave,
// so its first sample may trail its "up" a little. Whatever is there
// after d, the lab goes on.
func waitStats(ctx context.Context, url string, n int, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		if snap, err := dashboard.Fetch(ctx, nil, url, ""); err == nil {
			got := 0
			for _, nd := range snap.Nodes {
				if nd.Stats != nil {
					got++
				}
			}
			if got >= n {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}
