package head

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/beo-cluster/beo/initramfs"
	"github.com/beo-cluster/beo/pkg/boot"
	"github.com/beo-cluster/beo/pkg/buildinfo"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/fstab"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/localfs"
	"github.com/beo-cluster/beo/pkg/master"
	"github.com/beo-cluster/beo/pkg/mpi"
	"github.com/beo-cluster/beo/pkg/nfs"
	"github.com/beo-cluster/beo/pkg/nodespec"
	"github.com/beo-cluster/beo/pkg/ratelog"
	"github.com/beo-cluster/beo/pkg/stats"
	"github.com/beo-cluster/beo/pkg/tcpreset"
)

// Options are the head node's paths and addresses; zero values mean
// defaults. `beo master`'s flags fill them; pkg/sim and tests set them.
type Options struct {
	Config, Listen, Socket, Keys, LogDir, NodeUp, Libs string
	// InitD is the directory of executables run for each node after
	// node_up (pkg/master); "" runs none.
	InitD string
	// Ready, if set, is called once bpmaster's listeners are up.
	Ready func(nodeAddr net.Addr, socket string)
	Log   *slog.Logger
	// Boot, if set, runs the boot server too. Its Iface defaults to the
	// config's first `interface` line; Config, File, Log, LogDir, OnConfig
	// and OnBoot are filled in by New. With it come the daemons that serve
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
	// StatusNames are the dotted names the dashboard answers besides
	// this machine's host name (dashboard.Config.Hosts).
	StatusNames []string
	// Kernel is the kernel image the boot package is built with ("" = the
	// running kernel's); Applets the names that get /bin links on nodes.
	// With Boot, New brings the boot package in Boot.BootDir up to date
	// (initramfs.Ensure) before anything answers.
	Kernel  string
	Applets []string
	// Fstab is the fstab nodes mount (Fstab.N for node N; "" = none,
	// see pkg/fstab) and NFS the server that exports what it asks of the
	// master (auto, kernel, ganesha, none; see pkg/nfs). Only with Boot.
	Fstab, NFS string
	// Admin is a uid that may change nodes as root may (master.Config):
	// pkg/sim makes the user who runs a simulated cluster its admin.
	Admin uint32
	// MPIDir is the MPI launchers' runtime directory (pkg/mpi; "" = mpi
	// next to Socket); Exe the beo binary its beorsh link points to (""
	// = this executable). MPISystem, if set, are the installed MPIs'
	// system-wide settings files: with MPI the head installs its settings
	// there while it runs (beo master -mpi), without it removes any it
	// finds. nil leaves them alone (beo sim, tests). MPIMTL is the
	// OpenMPI mtl parameter the settings carry ("" = none; see mpi.MTL).
	MPIDir, Exe string
	MPI         bool
	MPISystem   *mpi.System
	MPIMTL      string
}

// Head is a composed head node: its config, bpmaster, and every other
// daemon with its sockets open, ready to Serve.
type Head struct {
	o       Options
	cfg     *Reloader
	m       *master.Master
	nfsd    *nfs.Service // nil without an fstab to serve
	units   []Unit
	closers []io.Closer
	rcv     *stats.Receiver // recvstats, when it runs
}

// New loads the config, makes the master's keys, builds the boot package
// (with Boot), and opens every daemon's sockets. Nothing answers until
// Serve.
func New(ctx context.Context, o Options) (h *Head, err error) {
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
				return nil, fmt.Errorf("boot server: %w", err)
			}
			o.Boot.Iface = iface
		}
		if !o.Boot.Addr.IsValid() {
			p, err := config.InterfaceAddr(o.Boot.Iface)
			if err != nil {
				return nil, fmt.Errorf("boot server: %w", err)
			}
			o.Boot.Addr = p
		}
		copt.Masters = []netip.Addr{o.Boot.Addr.Addr()}
	}
	rel, file, err := Load(o.Config, copt, o.Log)
	if err != nil {
		return nil, err
	}
	cfg := rel.Config()
	keys, err := link.EnsureMasterKeys(o.Keys)
	if err != nil {
		return nil, err
	}
	if o.LogDir != "" {
		if err := os.MkdirAll(o.LogDir, 0o755); err != nil {
			return nil, fmt.Errorf("log dir: %w", err)
		}
	}
	if _, err := os.Stat(o.NodeUp); err != nil {
		o.NodeUp = "" // no node_up: nodes go up as soon as they connect
	}
	if o.Listen == "" {
		o.Listen = ":" + strconv.Itoa(int(cfg.Ports().BProc))
	}
	made := &Head{o: o, cfg: rel}
	h = made
	defer func() {
		if err != nil {
			made.Close() // h is nil by now: `return nil, err`
		}
	}()
	if h.nfsd, err = nfsSide(o, rel.Config); err != nil {
		return nil, err
	}
	if h.nfsd != nil {
		h.units = append(h.units, Unit{"nfs", h.nfsd.Serve})
		rel.Follow(func(*config.Config) { h.nfsd.Reload() }) // fstab lines removed: their exports go
	}
	mcfg := func(c *config.Config) master.Config { return h.masterConfig(c, keys) }
	if h.m, err = master.New(mcfg(cfg)); err != nil {
		return nil, err
	}
	m := h.m
	rel.Before(func(next *config.Config) {
		if removed, moved := master.Dropped(m.Table().All(), mcfg(next)); len(removed)+len(moved) > 0 {
			o.Log.Warn("reload drops nodes that are up", "removing", nodespec.Fold(removed), "readdressing", nodespec.Fold(moved))
		}
	})
	rel.Follow(func(c *config.Config) { m.Reconfigure(mcfg(c)) })
	if o.Boot != nil {
		bo := *o.Boot
		bo.Config, bo.File, bo.Log = o.Config, file, o.Log
		if bo.LogDir == "" {
			bo.LogDir = o.LogDir
		}
		bo.OnConfig = rel.Adopt
		bo.OnBoot = m.Booting
		if o.Fstab != "" {
			// A node starts loading what its mounts need as it boots.
			bo.Modules = func(n int) []string {
				t, _ := fstab.Load(o.Fstab, n)
				return t.Modules()
			}
		}
		ensureBootPackage(ctx, o, cfg, bo.BootDir)
		bs, err := boot.New(bo)
		if err != nil {
			return nil, err
		}
		rel.Own(bs.SetFile)
		h.units = append(h.units, Unit{"beoserv", bs.Serve})
		writeNames(o, cfg)
		rel.Follow(func(c *config.Config) { writeNames(o, c) })
		if err := h.nodeDaemons(); err != nil {
			return nil, err
		}
	}
	nl, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen for nodes: %w", err)
	}
	h.closers = append(h.closers, nl)
	ul, err := listenUnix(o.Socket)
	if err != nil {
		return nil, err
	}
	h.closers = append(h.closers, ul, closerFunc(func() error { return os.Remove(o.Socket) }))
	if err := h.forwarding(); err != nil {
		return nil, err
	}
	h.units = append(h.units,
		Unit{"bpmaster nodes", func(ctx context.Context) error { return m.ServeNodes(ctx, nl) }},
		Unit{"bpmaster clients", func(ctx context.Context) error { return m.ServeClients(ctx, ul) }})
	if err := h.monitorDaemons(); err != nil {
		return nil, err
	}
	if err := h.mpiFiles(h.rcv); err != nil {
		return nil, err
	}
	o.Log.Info("bpmaster listening", "nodes", nl.Addr(), "socket", o.Socket, "count", cfg.NodeCount(), "build", buildinfo.Hash())
	if o.Ready != nil {
		o.Ready(nl.Addr(), o.Socket)
	}
	return h, nil
}

// Master is the head's bpmaster.
func (h *Head) Master() *master.Master { return h.m }

// Config is the head's config and its reload path.
func (h *Head) Config() *Reloader { return h.cfg }

// Serve runs every daemon until ctx ends or one fails (see Run), then
// closes the head's sockets.
func (h *Head) Serve(ctx context.Context) error {
	defer h.Close()
	return Run(ctx, h.o.Log, h.cfg, h.units...)
}

// Close closes the sockets New opened; Serve does it when it returns.
func (h *Head) Close() error {
	for i := len(h.closers) - 1; i >= 0; i-- {
		h.closers[i].Close()
	}
	h.closers = nil
	return nil
}

func (h *Head) masterConfig(cfg *config.Config, keys link.Keys) master.Config {
	o := h.o
	mc := master.Config{
		PingTimeout: cfg.PingTimeout(),
		Keys:        keys,
		KeyDir:      o.Keys,
		NodeUp:      o.NodeUp,
		InitD:       o.InitD,
		LogDir:      o.LogDir,
		LibFile:     o.Libs,
		Log:         o.Log,
		Admin:       o.Admin,
		ConfigPath:  o.Config,
		Reload:      h.cfg.Reload,
		Disks:       localfs.PolicyOf(cfg),
	}
	if o.LogDir != "" {
		mc.Accounting = filepath.Join(o.LogDir, "accounting") // a line per finished job (pkg/acct)
	}
	if h.nfsd != nil {
		mc.Mounts = h.nfsd.Mounts
		mc.UsrEtc = master.DefaultUsrEtc
	}
	if os.Geteuid() == 0 {
		mc.ResetConns = tcpreset.Reset
	}
	if b := buildinfo.Hash(); b != "unstamped" {
		mc.Build = b
	}
	if ap, err := netip.ParseAddrPort(o.Listen); err == nil && !ap.Addr().IsUnspecified() {
		mc.MasterAddr = ap.Addr().String()
	} else if o.Boot != nil {
		mc.MasterAddr = o.Boot.Addr.Addr().String()
	}
	if cfg.MultiMaster() {
		mc.Masters, mc.Peers = cfg.MasterOrder, cfg.Masters()
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

// ensureBootPackage brings the boot package in dir up to date with this
// binary, the kernel and the cluster's modules, libraries and keys, so
// nodes always boot what matches the master. A failure (no kernel image
// for the running kernel, say) is logged: the boot server then serves
// whatever dir holds, and `beo beoboot -k KERNEL` can fill it.
func ensureBootPackage(ctx context.Context, o Options, cfg *config.Config, dir string) {
	io := initramfs.Options{Dir: dir, Kernel: o.Kernel, Keys: o.Keys, Applets: o.Applets, Log: o.Log}
	io, err := initramfs.ForCluster(io, cfg, o.Libs)
	if err == nil {
		var changed bool
		if changed, err = initramfs.Ensure(ctx, io); err == nil {
			o.Log.Info("boot package", "dir", dir, "rebuilt", changed)
			return
		}
	}
	o.Log.Warn("boot package not built; serving what the boot directory holds", "dir", dir, "err", err)
}
