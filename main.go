// Command beo is the single binary of the beo cluster system, a Go
// re-implementation of Scyld ClusterWare and BProc.
//
// It dispatches on basename(argv[0]) — symlinked as bpsh, bpstat, … it is
// that command — and otherwise on its first argument (`beo bpstat`). Run as
// PID 1 (or named "init") it is the compute node's init, beoclient. `beo`
// alone lists the applets; `beo install-links DIR` creates the symlinks.
//
// This file is the one dispatch table: every entry point is listed here.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/applets/beoboot"
	"github.com/beo-cluster/beo/applets/beoclient"
	"github.com/beo-cluster/beo/applets/beofdisk"
	"github.com/beo-cluster/beo/applets/beoklogd"
	"github.com/beo-cluster/beo/applets/beomap"
	"github.com/beo-cluster/beo/applets/beonss"
	"github.com/beo-cluster/beo/applets/beorsh"
	"github.com/beo-cluster/beo/applets/beorun"
	"github.com/beo-cluster/beo/applets/beoserv"
	"github.com/beo-cluster/beo/applets/beostat"
	"github.com/beo-cluster/beo/applets/beostatus"
	"github.com/beo-cluster/beo/applets/bpcp"
	"github.com/beo-cluster/beo/applets/bpctl"
	"github.com/beo-cluster/beo/applets/bplib"
	"github.com/beo-cluster/beo/applets/bpmove"
	"github.com/beo-cluster/beo/applets/bpsh"
	"github.com/beo-cluster/beo/applets/bpslave"
	"github.com/beo-cluster/beo/applets/bpstat"
	configapplet "github.com/beo-cluster/beo/applets/config"
	"github.com/beo-cluster/beo/applets/kickbackdaemon"
	"github.com/beo-cluster/beo/applets/kickbackproxy"
	labapplet "github.com/beo-cluster/beo/applets/lab"
	masterapplet "github.com/beo-cluster/beo/applets/master"
	"github.com/beo-cluster/beo/applets/recvstats"
	"github.com/beo-cluster/beo/applets/sendstats"
	"github.com/beo-cluster/beo/applets/sim"
	"github.com/beo-cluster/beo/applets/version"
	"github.com/beo-cluster/beo/pkg/lab"
	"github.com/beo-cluster/beo/pkg/pid1"
	"github.com/beo-cluster/beo/pkg/slave"
)

type applet struct {
	purpose string
	run     func(ctx context.Context, args []string, io applets.IO) error
	// link is true for applets users call by their own name, so
	// install-links makes a symlink for them.
	link bool
}

// table returns the dispatch table. Keep it sorted by name. (A function,
// not a variable, because install-links itself reads the table.)
func table() map[string]applet {
	return map[string]applet{
		"beoboot":        {"build the nodes' boot package (kernel, initrd, rootfs) from this binary", beoboot.Applets(names).Run, true},
		"beoclient":      {"the compute node's init (PID 1): network, rootfs, bpslave and the node daemons", beoclient.Applets(names).Run, false},
		"beofdisk":       {"partition the nodes' local disks (/etc/beowulf/fdisk), make, check and mount their filesystems", beofdisk.Run, true},
		"beoklogd":       {"the node's log forwarder: kernel messages and /dev/log to the master's syslog (RFC 3164, UDP)", beoklogd.Run, true},
		"beomap":         {"print a job map: where each process of a parallel job goes, least loaded CPUs first", beomap.Run, true},
		"beonss":         {"show or write the cluster's names (.N, nN, master, hosts, ethers, netgroup cluster)", beonss.Run, true},
		"beorsh":         {"rsh for the cluster: run a command line on a node by any of its names (MPI launchers' agent)", beorsh.Run, true},
		"beorun":         {"run a program on every process of a job map at once (--np, NP, NO_LOCAL, …)", beorun.Run, true},
		"beoserv":        {"the boot server alone: DHCP/PXE/iPXE, TFTP, HTTP, IPv6 RA on the cluster interface", beoserv.Run, true},
		"beostat":        {"per-node listing of the stats nodes send: CPU, load, memory, network, rootfs", beostat.Run, true},
		"beostatus":      {"serve the master's live dashboard (beostatus) on another address", beostatus.Run, true},
		"bpcp":           {"copy files between the master and nodes, or node to node", bpcp.Run, true},
		"bpctl":          {"control nodes: state, reboot/halt/power off, owner, group, mode", bpctl.Run, true},
		"bplib":          {"manage the libraries prestaged to every node", bplib.Run, true},
		"bpmaster":       {"the BProc master daemon alone (TCP 933, unix socket for clients)", masterapplet.Run, true},
		"bpmove":         {"move a running remote process to another node (CRIU), keeping its ghost, stdio and exit status", bpmove.Run, true},
		"bpsh":           {"run a program on one node, several, or all", bpsh.Run, true},
		"bpslave":        {"the compute node daemon: connects to bpmaster, runs its processes", bpslave.Run, true},
		"bpstat":         {"show node status, addresses, owners, and which node runs a pid", bpstat.Run, true},
		"config":         {"check /etc/beowulf/config and show what it means", configapplet.Run, false},
		"install-links":  {"create symlinks in DIR (made if missing): beo and every applet called by name", installLinks, false},
		"kickbackdaemon": {"the name service for nodes alone (TCP 3045): names, and a job's user", kickbackdaemon.Run, true},
		"kickbackproxy":  {"the node's name service client: keeps /etc/hosts etc. and a job's user in step with the master", kickbackproxy.Run, true},
		"lab":            {"a real cluster here: beo master in a network namespace + N QEMU nodes PXE-booting from it", labapplet.Run, false},
		"master":         {"the head node's daemons: bpmaster, beoserv, recvstats, beostatus, logs, kickback", masterapplet.Main(names), false},
		"mpprun":         {"run a program on the processes of a job map one after another", beorun.Mpprun, true},
		"recvstats":      {"the stats receiver alone (UDP 5545) with the dashboard, /api/stats, /metrics", recvstats.Run, true},
		"sendstats":      {"send this host's /proc stats to the master every few seconds (nodes and non-Scyld hosts)", sendstats.Run, true},
		"sim":            {"a simulated cluster on this machine: master + N bpslave processes", sim.Run, false},
		"version":        {"print the version and build hash", version.Run, false},
	}
}

func main() {
	// bpslave's exec trampoline (pkg/slave spawn.go): no applet, never listed.
	if len(os.Args) > 0 && os.Args[0] == slave.SpawnArg0 {
		slave.Spawn() // returns only if it could not exec, having told bpslave why
		os.Exit(slave.SpawnFailed)
	}
	// The node kernel's module helper (pkg/pid1 modprobe.go): no applet,
	// never listed.
	if len(os.Args) > 0 && filepath.Base(os.Args[0]) == pid1.ModprobeArg0 {
		os.Exit(pid1.Modprobe(os.Args[1:], os.Stderr))
	}
	// beo lab's helper that runs a user's command in the lab's namespace
	// (pkg/lab enter.go): no applet, never listed.
	if len(os.Args) > 0 && os.Args[0] == lab.EnterArg0 {
		lab.Enter() // exits
	}
	os.Exit(run(os.Args, applets.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
}

func run(argv []string, stdio applets.IO) int {
	name, args := pick(argv)
	switch name {
	case "", "help", "-h", "-help", "--help": // beo help: the applets, as beo alone
		list(stdio.Out)
		return 0
	}
	a, ok := table()[name]
	if !ok {
		fmt.Fprintf(stdio.Err, "beo: unknown applet %q\n", name)
		usage(stdio.Err)
		return 2
	}
	ctx, stop := termContext()
	defer stop()
	return exitCode(name, a.run(ctx, args, stdio), stdio.Err)
}

// termContext is the applets' context: it ends on SIGTERM, as with
// signal.NotifyContext, and stop lets the signal go. The signal is
// registered on a goroutine of its own: the runtime's set-up of a
// program's first caught signal — a thread for signals, and a round trip
// to it — then runs beside the applet's own start instead of before it,
// ~0.2 ms of every bpsh. A SIGTERM in that first instant ends the
// process, as one before the registration always did.
func termContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		defer signal.Stop(ch)
		select {
		case <-ch:
			cancel()
			<-stopped // caught, not the default, until stop
		case <-stopped:
		}
	}()
	var once sync.Once
	return ctx, func() { once.Do(func() { close(stopped) }); cancel() }
}

// pick returns the applet name and its arguments: basename(argv[0]) when it
// names an applet, else argv[1]. An empty name means "list the applets".
func pick(argv []string) (string, []string) { return pickAs(argv, os.Getpid()) }

// pickAs is pick for a process with the given pid. A compute node's init
// is beoclient: the binary called "init", or PID 1 (the kernel's /init,
// or the binary exec'd again by switch_root) unless its command line
// names an applet — so `beo master` still works as a container's PID 1.
// The kernel passes init the command-line words it does not know;
// beoclient ignores them.
func pickAs(argv []string, pid int) (string, []string) {
	if len(argv) == 0 {
		return "", nil
	}
	base := filepath.Base(argv[0])
	if base == "init" {
		return "beoclient", argv[1:]
	}
	if _, ok := table()[base]; ok {
		return base, argv[1:]
	}
	if pid == 1 {
		if _, ok := table()[applet1(argv)]; !ok {
			return "beoclient", argv[1:]
		}
	}
	if len(argv) < 2 {
		return "", nil
	}
	return argv[1], argv[2:]
}

func applet1(argv []string) string {
	if len(argv) < 2 {
		return ""
	}
	return argv[1]
}

func exitCode(name string, err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var u *applets.Usage
	var e *applets.Exit
	switch {
	case errors.As(err, &e):
		return e.Code
	case errors.As(err, &u):
		if u.Msg != "" {
			fmt.Fprintf(stderr, "%s: %s\n", name, u.Msg)
		}
		fmt.Fprintln(stderr, u.Line)
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
}

func names() []string {
	var ns []string
	for n := range table() {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: beo APPLET [args...]   (or call a symlink named after the applet)")
	fmt.Fprintln(w, "run `beo` alone to list the applets")
}

func list(w io.Writer) {
	fmt.Fprintln(w, "beo — a Scyld ClusterWare / BProc cluster in one binary")
	fmt.Fprintln(w, "usage: beo APPLET [args...]   (or call a symlink named after the applet)")
	fmt.Fprintln(w)
	for _, n := range names() {
		fmt.Fprintf(w, "  %-15s %s\n", n, table()[n].purpose)
	}
}

// installLinks implements `beo install-links DIR`: a symlink DIR/NAME →
// this executable for `beo` itself and every applet users call by name,
// DIR created if missing. Existing symlinks are replaced; an existing
// regular file is left alone and reported, unless it is this executable
// (beo installed in DIR). A DIR not on $PATH is pointed out.
func installLinks(ctx context.Context, args []string, stdio applets.IO) error {
	const line = "usage: beo install-links DIR   (symlinks DIR/beo, DIR/bpsh, … to this binary)"
	fs := applets.NewFlagSet("install-links", line, stdio.Err)
	if err := applets.ParseFlags(fs, line, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &applets.Usage{Line: line}
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	selfInfo, err := os.Stat(self)
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	dir := fs.Arg(0)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var failed []string
	for _, n := range append([]string{"beo"}, names()...) {
		if n != "beo" && !table()[n].link {
			continue
		}
		p := filepath.Join(dir, n)
		if fi, err := os.Lstat(p); err == nil {
			if fi.Mode()&os.ModeSymlink == 0 {
				if os.SameFile(fi, selfInfo) {
					continue // this binary itself
				}
				fmt.Fprintf(stdio.Err, "install-links: %s exists and is not a symlink; left alone\n", p)
				failed = append(failed, n)
				continue
			}
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("replace %s: %w", p, err)
			}
		}
		if err := os.Symlink(self, p); err != nil {
			return fmt.Errorf("link %s: %w", p, err)
		}
		fmt.Fprintln(stdio.Out, p)
	}
	if !onPath(dir, os.Getenv("PATH")) {
		fmt.Fprintf(stdio.Err, "install-links: %s is not on $PATH; to use the links: export PATH=%s:$PATH\n", dir, dir)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d links not created", len(failed))
	}
	return nil
}

// onPath reports whether dir is one of path's directories.
func onPath(dir, path string) bool {
	want, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	wantInfo, _ := os.Stat(want)
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			continue
		}
		if a, err := filepath.Abs(d); err == nil && a == want {
			return true
		}
		if fi, err := os.Stat(d); err == nil && wantInfo != nil && os.SameFile(fi, wantInfo) {
			return true
		}
	}
	return false
}
