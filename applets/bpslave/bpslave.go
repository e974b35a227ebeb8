// Package bpslave implements the bpslave applet: the compute node daemon
// that connects to bpmaster and runs what it sends (see pkg/slave).
//
//	bpslave -m HOST:PORT[,HOST:PORT…] [-n NODE] [-keys DIR] [-root DIR] [-cache DIR] [-cgroup DIR|none] [-src ADDR] [-sim [-view]] [-stats HOST:PORT [-stats-interval D]] [-usage-interval D] [-clients PATH|none] [-pidspace]
//
// -m names bpmaster; several, comma-separated, are the node's masters
// (the config's masterorder), its primary — the one that booted it —
// first (pkg/slave masters.go). On a
// real node beoclient (PID 1) starts it with -root / and the keys the
// boot image carries. A simulated node (beo sim) passes -sim, a private
// -root, and -src, the loopback address the master maps to its number.
//
// -cgroup is the cgroup v2 group each job gets a group of its own in
// (pkg/slave cgroup.go): beoclient passes nodefs.JobsCgroup and beo sim
// one group per node, and each kills it when bpslave exits. Without it
// bpslave makes beo-jobs under its own cgroup; "none" runs jobs without.
//
// -stats makes bpslave its own sendstats too: once the master first
// accepts the node, it sends this host's /proc stats to recvstats at
// HOST:PORT from -src, claiming the node's number. beo sim's nodes use
// it, so that beostat shows them without a sendstats process per node;
// a real node runs sendstats (started by beoclient) instead.
//
// -usage-interval is how often a running job's accounting (its cgroup's
// CPU, memory, tasks and I/O) goes to the master after the first, a
// second into the job (pkg/slave usage.go): 5 s by default, the stats
// interval of a node; beo sim passes its stats interval.
//
// -clients is the node's client socket (pkg/slave: clients.go): bpsh,
// bpstat, bpcp … run on the node reach the master through it, as the
// calling user. By default it is ROOT/run/beowulf/bpmaster.sock — the
// node's own /run on a real node and on a simulated node with -view; in
// a simulated node's directory without one (its jobs find it through
// BEO_SOCKET).
//
// # Power
//
// bpctl -R/-H/-P reach Config.Power. On a real node that is sync(2) then
// reboot(2) with RESTART, HALT or POWER_OFF: immediate, no process
// shutdown — right for a diskless node whose state lives in RAM. The call
// needs CAP_SYS_BOOT and acts on the whole machine, so run bpslave without
// -sim only on a node booted by beo; inside a PID namespace the kernel
// instead ends that namespace's init (its PID 1). With -sim, a power action
// ends bpslave with a message; beo sim starts it again like a node coming
// back.
package bpslave

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/buildinfo"
	"github.com/beo-cluster/beo/pkg/kickback"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/pid1"
	"github.com/beo-cluster/beo/pkg/sim"
	"github.com/beo-cluster/beo/pkg/slave"
	"github.com/beo-cluster/beo/pkg/stats"
	"github.com/beo-cluster/beo/pkg/wire"
	"golang.org/x/sys/unix"
)

const usage = "usage: bpslave -m HOST:PORT[,HOST:PORT…] [-n NODE] [-keys DIR] [-root DIR] [-cache DIR] [-cgroup DIR|none] [-src ADDR] [-sim [-view]] [-stats HOST:PORT [-stats-interval D]] [-usage-interval D] [-clients PATH|none] [-client-bin DIR] [-pidspace]"

// Run is the bpslave applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet("bpslave", usage, stdio.Err)
	master := fs.String("m", "", "bpmaster address HOST:PORT, or several comma-separated, primary first (required)")
	node := fs.Int("n", -1, "this node's number (-1: the master decides from the node's address)")
	keys := fs.String("keys", "/etc/beowulf/keys", "directory holding node.key and master.pub")
	root := fs.String("root", "/", "the node's filesystem root")
	cache := fs.String("cache", "", "file cache directory (default ROOT/var/cache/beo)")
	src := fs.String("src", "", "local address to dial the master from")
	view := fs.Bool("view", false, "simulated node in a mount namespace of its own: make the overlay of -root on the host's / this process's root (pkg/sim)")
	simulated := fs.Bool("sim", false, "simulated node: reboot, halt and power off end bpslave instead of the host")
	cgroup := fs.String("cgroup", "", `cgroup v2 directory for the jobs' groups ("": beo-jobs under bpslave's own; "none": no cgroups)`)
	statsTo := fs.String("stats", "", "also send this host's stats to recvstats at HOST:PORT, from -src (beo sim's nodes)")
	statsEvery := fs.Duration("stats-interval", stats.DefaultInterval, "time between stats samples (with -stats)")
	pids := fs.Bool("pidspace", false, "this host is a node of its own (a real node): give its jobs a pid range of their own, so processes can move here keeping their pids, and sessions of their own, so a move's checkpoint holds a job's whole session")
	usageEvery := fs.Duration("usage-interval", slave.DefaultUsageInterval, "time between a running job's usage reports to the master, after the first")
	clients := fs.String("clients", "", "the node's client socket, relayed to the master (default ROOT"+bproc.DefaultSocket+"; \"none\": no socket)")
	clientBin := fs.String("client-bin", "", "the node's client commands (bpsh, bpcp, bpstat …): appended to every job's PATH that lacks it")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() != 0:
		return &applets.Usage{Line: usage, Msg: "unexpected arguments"}
	case *master == "":
		return &applets.Usage{Line: usage, Msg: "-m HOST:PORT is required"}
	}
	masters := strings.Split(*master, ",")
	for i, m := range masters {
		if _, _, err := net.SplitHostPort(m); err != nil {
			return &applets.Usage{Line: usage, Msg: fmt.Sprintf("-m %q: want HOST:PORT, comma-separated", m)}
		}
		if slices.Contains(masters[:i], m) {
			return &applets.Usage{Line: usage, Msg: fmt.Sprintf("-m: %s listed twice", m)}
		}
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 15 * time.Second}
	srcIP, err := applets.AddrFlag(usage, "src", *src)
	if err != nil {
		return err
	}
	var statsAddr netip.AddrPort
	if *statsTo != "" {
		if statsAddr, err = netip.ParseAddrPort(*statsTo); err != nil {
			return &applets.Usage{Line: usage, Msg: fmt.Sprintf("-stats %q: want IP:PORT", *statsTo)}
		}
		if *statsEvery < 100*time.Millisecond {
			return &applets.Usage{Line: usage, Msg: "-stats-interval must be at least 100ms"}
		}
	}
	if *usageEvery < 100*time.Millisecond {
		return &applets.Usage{Line: usage, Msg: "-usage-interval must be at least 100ms"}
	}
	if srcIP.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(srcIP, 0))
	}
	k, err := link.NodeKeys(*keys)
	if err != nil {
		return err
	}
	if *view {
		// Keys are read; from here on the node's view is all there is.
		if err := sim.EnterView(*root); err != nil {
			return err
		}
		*root = "/"
	}
	switch *clients {
	case "":
		*clients = filepath.Join(*root, bproc.DefaultSocket) // after -view: the node's own /run
	case "none":
		*clients = ""
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	power := pid1.Power
	acted := make(chan string, 1)
	if *simulated {
		go exitWithParent(ctx, cancel)
		power = func(action string) error {
			select {
			case acted <- action:
			default:
			}
			cancel()
			return nil
		}
	}
	var before func(context.Context, wire.Cred) error
	if !*simulated {
		// A real node: the job's user comes from the master through the
		// node's kickbackproxy (pkg/kickback) before the job starts.
		before = func(ctx context.Context, c wire.Cred) error {
			return kickback.Ensure(ctx, kickback.DefaultSocket, c.UID)
		}
	}
	log := slog.New(slog.NewTextHandler(stdio.Err, nil))
	var connected func(int)
	if statsAddr.IsValid() {
		var once sync.Once
		connected = func(n int) {
			once.Do(func() { go sendStats(ctx, log, srcIP, statsAddr, n, *statsEvery) })
		}
	}
	var modules func(...string) error
	if !*simulated {
		modules = pid1.LoadModules // the initrd's modules, for the fstab's file systems and CRIU
	}
	err = slave.Run(ctx, slave.Config{
		Masters: masters, Keys: k, Node: *node, Root: *root, CacheDir: *cache, Cgroup: *cgroup, SpreadPIDs: *pids, JobSessions: *pids,
		Build: buildinfo.Hash(), Log: log,
		Dialer: d, Power: power, BeforeExec: before, Connected: connected, LoadModules: modules,
		ClientSocket: *clients, ClientBin: *clientBin, UsageInterval: *usageEvery,
	})
	select {
	case a := <-acted:
		fmt.Fprintf(stdio.Err, "bpslave: simulated %s: exiting\n", a)
	default:
	}
	return err
}

// sendStats is -stats: sendstats inside bpslave, from src (if valid) to
// to, claiming node n, until ctx ends. It starts once the master has
// accepted the node, so the samples never make a node that is still
// connecting "alive" (a host that only sends stats).
func sendStats(ctx context.Context, log *slog.Logger, src netip.Addr, to netip.AddrPort, n int, every time.Duration) {
	var laddr *net.UDPAddr
	if src.IsValid() {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	conn, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(to))
	if err != nil {
		log.Warn("stats not sent", "to", to, "err", err)
		return
	}
	defer conn.Close()
	s := stats.Sender{Collector: stats.Collector{Proc: "/proc"}, Claim: n, Interval: every, Log: log}
	s.Serve(ctx, conn)
}

// exitWithParent ends a simulated node when the process that started it
// (beo sim) is gone. Pdeathsig cannot do this: Linux sends it when the
// parent *thread* exits, and the master's threads may end (creds.Do ends
// one whose borrowed identity it cannot put back).
func exitWithParent(ctx context.Context, cancel context.CancelFunc) {
	parent := unix.Getppid()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if unix.Getppid() != parent {
				cancel()
				return
			}
		}
	}
}
