// Package master implements `beo master` and `bpmaster`: the head node's
// daemons, composed by pkg/head. bpmaster reads /etc/beowulf/config,
// accepts bpslave connections on the bproc port (933 unless `server
// bproc N`), serves local clients on a unix socket
// (/run/beowulf/bpmaster.sock, mode 0666: callers are identified by
// SO_PEERCRED) and creates the master's key on first start
// (/etc/beowulf/keys, see pkg/link). `beo master` adds the boot server,
// node log receiver and kickback when a cluster interface is known
// (-iface, or the config's `interface` line), and recvstats with the
// beostatus dashboard. With the boot server come the nodes' file systems:
// each node mounts the lines of /etc/beowulf/fstab (its own fstab.N when
// there is one; -fstab) as it connects, and beo master has an NFS server
// export what they ask of it (-nfs: the kernel's nfsd, or nfs-ganesha run
// as its child; pkg/nfs). No fstab file, no mounts and no server: `beo
// config fstab-example` prints a commented one to start from.
//
// Both keep the MPI launchers' directory next to the socket
// (/run/beowulf/mpi: beorsh, default hostfiles, settings; see pkg/mpi).
// With -mpi, `beo master` also makes those settings the system-wide
// defaults of the installed OpenMPI and MPICH while it runs, so every
// user's `mpirun -np 8 ./a.out` starts its ranks on the least loaded
// nodes; the defaults are removed when it stops (or, after a crash,
// when it starts again without -mpi).
//
//	beo master reload   re-read the config in the running master (root)
//	beo master status   is it running, its pid, build, config and nodes
package master

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/boot"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/fstab"
	"github.com/beo-cluster/beo/pkg/head"
	"github.com/beo-cluster/beo/pkg/master"
	"github.com/beo-cluster/beo/pkg/mpi"
	"github.com/beo-cluster/beo/pkg/nfs"
)

const (
	usage       = "usage: bpmaster [-config FILE] [-listen ADDR] [-socket PATH] [-keys DIR] [-logdir DIR] [-node-up PROG] [-init-d DIR] [-libs FILE]"
	masterUsage = "usage: beo master [reload|status [-socket PATH]] | beo master [bpmaster flags] [-iface NAME] [-bootdir DIR] [-tftproot DIR] [-unknown FILE] [-http PORT] [-dhcp-port N] [-tftp-port N] [-no-ra] [-no-boot] [-names-root DIR] [-mpi] [-stats ADDR] [-status ADDR] [-status-names NAMES] [-kernel PATH] [-fstab FILE] [-nfs auto|kernel|ganesha|none]"
)

// Run is the bpmaster applet: bpmaster alone.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	var o head.Options
	fs := applets.NewFlagSet("bpmaster", usage, stdio.Err)
	bpmasterFlags(fs, &o)
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &applets.Usage{Line: usage, Msg: "unexpected arguments"}
	}
	o.Log = slog.New(slog.NewTextHandler(stdio.Err, nil))
	return Serve(ctx, o)
}

// Main returns `beo master`: bpmaster, recvstats and the dashboard, plus
// the boot server and the node-side daemons when a cluster interface is
// known (-iface or the config's `interface`). names lists the dispatch
// table's applets (for the nodes' /bin links).
func Main(names func() []string) func(context.Context, []string, applets.IO) error {
	return func(ctx context.Context, args []string, stdio applets.IO) error {
		return runMaster(ctx, args, stdio, names())
	}
}

func runMaster(ctx context.Context, args []string, stdio applets.IO, names []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "reload":
			return reloadCmd(ctx, args[1:], stdio)
		case "status":
			return statusCmd(ctx, args[1:], stdio)
		}
	}
	o := head.Options{Applets: names}
	var bo boot.Options
	var noBoot bool
	fs := applets.NewFlagSet("master", masterUsage, stdio.Err)
	bpmasterFlags(fs, &o)
	fs.StringVar(&bo.Iface, "iface", "", "cluster interface for the boot server (default: the config's `interface` line)")
	fs.StringVar(&bo.BootDir, "bootdir", boot.DefaultBootDir, "boot package: kernel, initrd, rootfs.cpio")
	fs.StringVar(&bo.TFTPRoot, "tftproot", boot.DefaultTFTPRoot, "TFTP root: the iPXE binaries")
	fs.StringVar(&bo.UnknownFile, "unknown", boot.DefaultUnknownFile, "where MACs that get no node are recorded")
	fs.IntVar(&bo.HTTPPort, "http", 0, "boot HTTP port (default: the config's `server http`, 80; -1 disables)")
	fs.IntVar(&bo.DHCPPort, "dhcp-port", 67, "DHCP server port")
	fs.IntVar(&bo.TFTPPort, "tftp-port", 69, "TFTP port (-1 disables)")
	fs.BoolVar(&bo.NoRA, "no-ra", false, "do not answer IPv6 router solicitations")
	fs.BoolVar(&noBoot, "no-boot", false, "run no boot server")
	fs.StringVar(&o.Stats, "stats", "config", "recvstats UDP address (config = :PORT of `server beostats`; \"\" = none)")
	fs.StringVar(&o.Status, "status", dashboard.DefaultAddr, "beostatus dashboard and /metrics address (\"\" = none)")
	fs.Func("status-names", "comma-separated dotted names (head.example.org) the dashboard answers besides addresses, localhost, dotless names and the host name", func(v string) error {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				o.StatusNames = append(o.StatusNames, n)
			}
		}
		return nil
	})
	fs.StringVar(&o.Kernel, "kernel", "", "kernel for the boot package (default: the running kernel's image)")
	fs.StringVar(&o.NamesRoot, "names-root", "/", "write the cluster's names into ROOT/etc/{hosts,ethers,netgroup} (\"\" = don't)")
	fs.StringVar(&o.Fstab, "fstab", fstab.DefaultPath, "what nodes mount (FILE.N for node N; \"\" or no file = nothing)")
	fs.StringVar(&o.NFS, "nfs", string(nfs.Auto), "NFS server for the fstab's exports: auto, kernel, ganesha, none")
	fs.BoolVar(&o.MPI, "mpi", false, "while the master runs, the stock mpirun (OpenMPI) and mpirun.mpich (hydra) of every user start their ranks on the nodes: system-wide defaults, removed when it stops")
	if err := applets.ParseFlags(fs, masterUsage, args); err != nil {
		return err
	}
	sys := mpi.FindSystem(ctx)
	o.MPISystem, o.MPIMTL = &sys, sys.MTL("/dev")
	if fs.NArg() != 0 {
		return &applets.Usage{Line: masterUsage, Msg: "unexpected arguments"}
	}
	o.Log = slog.New(slog.NewTextHandler(stdio.Err, nil))
	// Ctrl-C stops the master as SIGTERM does, so what it set up
	// (forwarding, the socket) is undone; a second one kills it.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	context.AfterFunc(ctx, stop)
	if !noBoot {
		if bo.Iface == "" {
			bo.Iface, _ = boot.ConfigIface(o.Config)
		}
		if bo.Iface != "" {
			o.Boot = &bo
		} else {
			o.Log.Warn("no cluster interface (-iface or an `interface` line): boot server not started")
		}
	}
	return Serve(ctx, o)
}

func bpmasterFlags(fs *flag.FlagSet, o *head.Options) {
	fs.StringVar(&o.Config, "config", config.DefaultPath, "cluster config file")
	fs.StringVar(&o.Listen, "listen", "", "node listener address (default :PORT from `server bproc`)")
	fs.StringVar(&o.Socket, "socket", bproc.DefaultSocket, "unix socket for local clients")
	fs.StringVar(&o.Keys, "keys", "/etc/beowulf/keys", "cluster key directory")
	fs.StringVar(&o.LogDir, "logdir", "/var/log/beowulf", "per-node logs (node.N) and the accounting log (accounting: a line per finished job)")
	fs.StringVar(&o.NodeUp, "node-up", "/usr/lib/beoboot/bin/node_up", "program run when a node connects (exit 0 → up); missing = none")
	fs.StringVar(&o.InitD, "init-d", master.DefaultInitD, "executables run in name order for each node after node_up (\"\" = none)")
	fs.StringVar(&o.Libs, "libs", "/etc/beowulf/libraries", "bplib's prestaged library list")
}

// Serve runs the head node composed from o (pkg/head) until ctx ends or
// one of its daemons fails.
func Serve(ctx context.Context, o head.Options) error {
	h, err := head.New(ctx, o)
	if err != nil {
		return err
	}
	return h.Serve(ctx)
}

const ctlUsage = "usage: beo master reload|status [-socket PATH]"

// reloadCmd is `beo master reload`: the running master re-reads its
// config (as SIGHUP does) and says whether it took it. systemd's
// ExecReload runs it.
func reloadCmd(ctx context.Context, args []string, stdio applets.IO) error {
	cl, err := dialCtl(ctx, "reload", args, stdio)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Reload(ctx); err != nil {
		return fmt.Errorf("config not reloaded: %w", err)
	}
	fmt.Fprintln(stdio.Out, "config reloaded")
	return nil
}

// statusCmd is `beo master status`: whether bpmaster runs, its pid,
// build, config, uptime and node counts by state. Not running exits 3,
// as an LSB init script's status does.
func statusCmd(ctx context.Context, args []string, stdio applets.IO) error {
	cl, err := dialCtl(ctx, "status", args, stdio)
	var usage *applets.Usage
	var exit *applets.Exit
	if errors.As(err, &usage) || errors.As(err, &exit) {
		return err // a bad command line (or -h), not a master that is down
	}
	if err == nil {
		defer cl.Close()
		var st bproc.Status
		if st, err = cl.Status(ctx); err == nil {
			fmt.Fprint(stdio.Out, head.FormatStatus(st, time.Now()))
			return nil
		}
	}
	fmt.Fprintln(stdio.Out, err) // "bpmaster is not running (SOCKET): …"
	return &applets.Exit{Code: 3}
}

func dialCtl(ctx context.Context, name string, args []string, stdio applets.IO) (*bproc.Client, error) {
	fs := applets.NewFlagSet("master "+name, ctlUsage, stdio.Err)
	sock := fs.String("socket", "", "bpmaster's client socket (default $BEO_SOCKET, else "+bproc.DefaultSocket+")")
	if err := applets.ParseFlags(fs, ctlUsage, args); err != nil {
		return nil, err
	}
	if fs.NArg() != 0 {
		return nil, &applets.Usage{Line: ctlUsage, Msg: "unexpected arguments"}
	}
	return bproc.Dial(ctx, *sock)
}
