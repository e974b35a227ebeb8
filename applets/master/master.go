// Package master implements `beo master` and `bpmaster`: the head node's
// daemons. bpmaster reads /etc/beowulf/config, accepts bpslave connections
// on the bproc port (933 unless `server bproc N`), serves local clients on
// a unix socket (/run/beowulf/bpmaster.sock, mode 0666: callers are
// identified by SO_PEERCRED) and creates the cluster keys on first start
// (/etc/beowulf/keys, see pkg/link).
//
// `beo master` runs the boot server (pkg/boot, beoserv) in the same
// process when a cluster interface is known (-iface, or the config's
// `interface` line): one config load, one node table, and one SIGHUP
// handler that re-reads the file and hands it to every daemon — a reload
// that fails validation keeps the running config and logs file:line. When
// beoserv adds a node line (a new MAC), bpmaster learns the node at once.
// Serve runs the daemons as a list under one errgroup; the stats
// receiver, log receiver and kickback daemon join that list as they are
// built. `beo bpmaster` (and Options without Boot, as pkg/sim uses) is
// bpmaster alone.
//
// With the boot server come the nodes' file systems (nfs.go): each node
// mounts the lines of /etc/beowulf/fstab (its own fstab.N when there is
// one; -fstab) as it connects, and beo master has an NFS server export
// what they ask of it (-nfs: the kernel's nfsd, or nfs-ganesha run as
// its child; see pkg/nfs). No fstab file, no mounts and no server:
// `beo config fstab-example` prints a commented one to start from.
package master

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/boot"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/buildinfo"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/fstab"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/master"
	"github.com/beo-cluster/beo/pkg/nfs"
	"github.com/beo-cluster/beo/pkg/nodespec"
	"github.com/beo-cluster/beo/pkg/ratelog"
	"github.com/beo-cluster/beo/pkg/wire"
	"golang.org/x/sync/errgroup"
)

const (
	usage       = "usage: bpmaster [-config FILE] [-listen ADDR] [-socket PATH] [-keys DIR] [-logdir DIR] [-node-up PROG] [-libs FILE]"
	masterUsage = "usage: beo master [bpmaster flags] [-iface NAME] [-bootdir DIR] [-tftproot DIR] [-unknown FILE] [-http PORT] [-dhcp-port N] [-tftp-port N] [-no-ra] [-no-boot] [-names-root DIR] [-stats ADDR] [-status ADDR] [-kernel PATH] [-fstab FILE] [-nfs auto|kernel|ganesha|none]"
)

// Options are the daemons' paths and addresses; zero values mean defaults.
type Options struct {
	Config, Listen, Socket, Keys, LogDir, NodeUp, Libs string
	// Ready, if set, is called once bpmaster's listeners are up.
	Ready func(nodeAddr net.Addr, socket string)
	Log   *slog.Logger
	// Boot, if set, runs the boot server too. Its Iface defaults to the
	// config's first `interface` line; Config, File, Log, LogDir and
	// OnConfig are filled in by Serve. With it come the daemons that serve
	// nodes on the cluster address: the log receiver and the kickback
	// name service.
	Boot *boot.Options
	// NamesRoot is the root under which the cluster's names are written
	// into etc/hosts, etc/ethers and etc/netgroup (pkg/nss) at start and
	// after each reload; "" writes none. Only with Boot.
	NamesRoot string
	// Stats is recvstats' UDP address ("config" = :PORT of `server
	// beostats`); "" runs no recvstats. Status is the beostatus dashboard's
	// TCP address (/, /api/stats, /api/events, /metrics); "" serves none.
	// The dashboard needs recvstats.
	Stats, Status string
	// Kernel is the kernel image the boot package is built with ("" = the
	// running kernel's); Applets the names that get /bin links on nodes.
	// With Boot, Serve brings the boot package in Boot.BootDir up to date
	// (initramfs.Ensure) before it answers anyone.
	Kernel  string
	Applets []string
	// Fstab is the fstab nodes mount (Fstab.N for node N; "" = none,
	// see pkg/fstab) and NFS the server that exports what it asks of the
	// master (auto, kernel, ganesha, none; see pkg/nfs). Only with Boot.
	Fstab, NFS string

	mounts func(n int, addr netip.Addr) ([]wire.Mount, []string, error) // the NFS side's, for bpmaster
}

// Run is the bpmaster applet: bpmaster alone.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	var o Options
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
	o := Options{Applets: names}
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
	fs.StringVar(&o.Kernel, "kernel", "", "kernel for the boot package (default: the running kernel's image)")
	fs.StringVar(&o.NamesRoot, "names-root", "/", "write the cluster's names into ROOT/etc/{hosts,ethers,netgroup} (\"\" = don't)")
	fs.StringVar(&o.Fstab, "fstab", fstab.DefaultPath, "what nodes mount (FILE.N for node N; \"\" or no file = nothing)")
	fs.StringVar(&o.NFS, "nfs", string(nfs.Auto), "NFS server for the fstab's exports: auto, kernel, ganesha, none")
	if err := applets.ParseFlags(fs, masterUsage, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &applets.Usage{Line: masterUsage, Msg: "unexpected arguments"}
	}
	o.Log = slog.New(slog.NewTextHandler(stdio.Err, nil))
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

func bpmasterFlags(fs *flag.FlagSet, o *Options) {
	fs.StringVar(&o.Config, "config", config.DefaultPath, "cluster config file")
	fs.StringVar(&o.Listen, "listen", "", "node listener address (default :PORT from `server bproc`)")
	fs.StringVar(&o.Socket, "socket", bproc.DefaultSocket, "unix socket for local clients")
	fs.StringVar(&o.Keys, "keys", "/etc/beowulf/keys", "cluster key directory")
	fs.StringVar(&o.LogDir, "logdir", "/var/log/beowulf", "per-node logs (node.N)")
	fs.StringVar(&o.NodeUp, "node-up", "/usr/lib/beoboot/bin/node_up", "program run when a node connects (exit 0 → up); missing = none")
	fs.StringVar(&o.Libs, "libs", "/etc/beowulf/libraries", "bplib's prestaged library list")
}

// Serve runs bpmaster, and the boot server when o.Boot is set, until ctx
// ends or one of them fails.
func Serve(ctx context.Context, o Options) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	// Complaints about bad peers (junk on a socket, refused nodes) are
	// throttled per message and source: a flood writes a few lines and a
	// summary, not a line per connection.
	o.Log = slog.New(ratelog.New(o.Log.Handler(), ratelog.Options{}))
	var copt config.Options
	if o.Boot != nil {
		if o.Boot.Iface == "" {
			iface, err := boot.ConfigIface(o.Config)
			if err != nil {
				return fmt.Errorf("boot server: %w", err)
			}
			o.Boot.Iface = iface
		}
		if !o.Boot.Addr.IsValid() {
			p, err := config.InterfaceAddr(o.Boot.Iface)
			if err != nil {
				return fmt.Errorf("boot server: %w", err)
			}
			o.Boot.Addr = p
		}
		copt.Masters = []netip.Addr{o.Boot.Addr.Addr()}
	}
	file, err := config.Open(o.Config, copt)
	if err != nil {
		return err
	}
	cfg := file.Config()
	for _, d := range cfg.Diags() {
		o.Log.Warn(d.String())
	}
	keys, err := link.EnsureMasterKeys(o.Keys)
	if err != nil {
		return err
	}
	if o.LogDir != "" {
		if err := os.MkdirAll(o.LogDir, 0o755); err != nil {
			return fmt.Errorf("log dir: %w", err)
		}
	}
	if _, err := os.Stat(o.NodeUp); err != nil {
		o.NodeUp = "" // no node_up: nodes go up as soon as they connect
	}
	addr := o.Listen
	if addr == "" {
		addr = ":" + strconv.Itoa(int(cfg.Ports().BProc))
	}
	masterAddr := ""
	if o.Boot != nil {
		masterAddr = o.Boot.Addr.Addr().String()
	}
	var cur atomic.Pointer[config.Config]
	cur.Store(cfg)
	nfsd, err := nfsSide(o, cur.Load)
	if err != nil {
		return err
	}
	if nfsd != nil {
		o.mounts = nfsd.Mounts
	}
	m, err := master.New(masterConfig(cfg, o, keys, addr, masterAddr))
	if err != nil {
		return err
	}
	// apply hands a new config (a reload, or a node line beoserv added)
	// to every daemon that keeps one.
	apply := func(c *config.Config) {
		cur.Store(c)
		m.Reconfigure(masterConfig(c, o, keys, addr, masterAddr))
		writeNames(o, c)
	}
	var bs *boot.Server
	var nodeSide []func(context.Context) error
	if o.Boot != nil {
		bo := *o.Boot
		bo.Config, bo.File, bo.Log = o.Config, file, o.Log
		if bo.LogDir == "" {
			bo.LogDir = o.LogDir
		}
		bo.OnConfig = apply
		bo.OnBoot = m.Booting
		ensureBootPackage(ctx, o, cfg, bo.BootDir)
		if bs, err = boot.New(bo); err != nil {
			return err
		}
		writeNames(o, cfg)
		nodeSide, err = nodeDaemons(o, cur.Load, m)
		if err != nil {
			return err
		}
	}
	nl, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for nodes: %w", err)
	}
	defer nl.Close()
	ul, err := listenUnix(o.Socket)
	if err != nil {
		return err
	}
	defer ul.Close()
	defer os.Remove(o.Socket)
	o.Log.Info("bpmaster listening", "nodes", nl.Addr(), "socket", o.Socket, "count", cfg.NodeCount(), "build", buildinfo.Hash())
	if o.Ready != nil {
		o.Ready(nl.Addr(), o.Socket)
	}
	dropped := func(c *config.Config) (removed, readdressed []int) {
		return master.Dropped(m.Table().All(), masterConfig(c, o, keys, addr, masterAddr))
	}
	defer applets.OnHangup(ctx, func() {
		reload(o, copt, bs, apply, dropped)
		if nfsd != nil {
			nfsd.Reload() // fstab lines removed: their exports go
		}
	})()
	// The daemons of `beo master`, each Serve(ctx) until ctx ends.
	daemons := []func(context.Context) error{
		func(ctx context.Context) error { return m.ServeNodes(ctx, nl) },
		func(ctx context.Context) error { return m.ServeClients(ctx, ul) },
	}
	if bs != nil {
		daemons = append(daemons, bs.Serve)
	}
	daemons = append(daemons, nodeSide...)
	monitor, err := monitorDaemons(o, cur.Load, m)
	if err != nil {
		return err
	}
	daemons = append(daemons, monitor...)
	if nfsd != nil {
		daemons = append(daemons, nfsd.Serve)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, d := range daemons {
		g.Go(func() error { return d(gctx) })
	}
	return g.Wait()
}

// reload re-reads the config file once and hands it to every daemon; a
// file with errors is refused with each error logged as file:line. Up
// nodes the new file removes or readdresses (dropped) are logged first.
func reload(o Options, copt config.Options, bs *boot.Server, bpmaster func(*config.Config), dropped func(*config.Config) (removed, readdressed []int)) {
	f, err := config.Open(o.Config, copt)
	if err != nil {
		var de *config.DiagError
		if errors.As(err, &de) {
			for _, d := range de.Diags {
				o.Log.Error("reload refused; keeping the running config", "diag", d.String())
			}
		} else {
			o.Log.Error("reload refused; keeping the running config", "err", err)
		}
		return
	}
	for _, d := range f.Config().Diags() {
		o.Log.Warn(d.String())
	}
	if removed, moved := dropped(f.Config()); len(removed)+len(moved) > 0 {
		o.Log.Warn("reload drops nodes that are up", "removing", nodespec.Fold(removed), "readdressing", nodespec.Fold(moved))
	}
	if bs != nil {
		if err := bs.SetFile(f); err != nil {
			o.Log.Error("reload refused by the boot server", "err", err)
			return
		}
	}
	bpmaster(f.Config())
	o.Log.Info("config reloaded", "count", f.Config().NodeCount())
}

func masterConfig(cfg *config.Config, o Options, keys link.Keys, listen, masterAddr string) master.Config {
	mc := master.Config{
		PingTimeout: cfg.PingTimeout(),
		Keys:        keys,
		KeyDir:      o.Keys,
		NodeUp:      o.NodeUp,
		LogDir:      o.LogDir,
		LibFile:     o.Libs,
		Log:         o.Log,
		Mounts:      o.mounts,
	}
	if h := buildinfo.Hash(); h != "unstamped" {
		mc.Build = h
	}
	if ap, err := netip.ParseAddrPort(listen); err == nil && !ap.Addr().IsUnspecified() {
		mc.MasterAddr = ap.Addr().String()
	} else if masterAddr != "" {
		mc.MasterAddr = masterAddr
	}
	for n := 0; n < cfg.NodeCount(); n++ {
		a, ok := cfg.NodeAddr(n)
		if !ok {
			continue
		}
		def := master.NodeDef{Num: n, Addr: a}
		if spec, ok := cfg.Node(n); ok {
			for _, mac := range spec.MACs {
				def.MACs = append(def.MACs, mac.String())
			}
		}
		mc.Nodes = append(mc.Nodes, def)
	}
	return mc
}

// listenUnix listens on path, replacing a stale socket nobody answers on,
// and refusing to steal one a running master still serves.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("socket dir: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another bpmaster is running", path)
		}
		os.Remove(path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
