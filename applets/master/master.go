// Package master implements `beo master` and `bpmaster`: the head node's
// process-space daemon. It reads /etc/beowulf/config, accepts bpslave
// connections on the bproc port (933 unless `server bproc N`), serves local
// clients on a unix socket (/run/beowulf/bpmaster.sock, mode 0666: callers
// are identified by SO_PEERCRED), creates the cluster keys on first start
// (/etc/beowulf/keys, see pkg/link) and reloads the config on SIGHUP — a
// reload that fails validation keeps the running config and logs file:line.
//
// Today `beo master` runs bpmaster only; the boot server (beoserv), stats
// receiver, log receiver and kickback daemon join it in this same process
// as they are built (see the README's status table).
package master

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/buildinfo"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/master"
)

const usage = "usage: bpmaster [-config FILE] [-listen ADDR] [-socket PATH] [-keys DIR] [-logdir DIR] [-node-up PROG] [-libs FILE]"

// Options are the daemon's paths and addresses; zero values mean defaults.
type Options struct {
	Config, Listen, Socket, Keys, LogDir, NodeUp, Libs string
	// Ready, if set, is called once both listeners are up.
	Ready func(nodeAddr net.Addr, socket string)
	Log   *slog.Logger
}

// Run is the bpmaster / `beo master` applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	var o Options
	fs := applets.NewFlagSet("bpmaster", usage, stdio.Err)
	fs.StringVar(&o.Config, "config", config.DefaultPath, "cluster config file")
	fs.StringVar(&o.Listen, "listen", "", "node listener address (default :PORT from `server bproc`)")
	fs.StringVar(&o.Socket, "socket", bproc.DefaultSocket, "unix socket for local clients")
	fs.StringVar(&o.Keys, "keys", "/etc/beowulf/keys", "cluster key directory")
	fs.StringVar(&o.LogDir, "logdir", "/var/log/beowulf", "per-node logs (node.N)")
	fs.StringVar(&o.NodeUp, "node-up", "/usr/lib/beoboot/bin/node_up", "program run when a node connects (exit 0 → up); missing = none")
	fs.StringVar(&o.Libs, "libs", "/etc/beowulf/libraries", "bplib's prestaged library list")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &applets.Usage{Line: usage, Msg: "unexpected arguments"}
	}
	o.Log = slog.New(slog.NewTextHandler(stdio.Err, nil))
	return Serve(ctx, o)
}

// Serve runs bpmaster with o until ctx ends.
func Serve(ctx context.Context, o Options) error {
	cfg, err := config.Load(o.Config, config.Options{})
	if err != nil {
		return err
	}
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
	mcfg := masterConfig(cfg, o, keys, addr)
	m, err := master.New(mcfg)
	if err != nil {
		return err
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
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				n, err := config.Load(o.Config, config.Options{})
				if err != nil {
					o.Log.Error("reload refused; keeping the running config", "err", err)
					continue
				}
				m.Reconfigure(masterConfig(n, o, keys, addr))
				o.Log.Info("config reloaded", "count", n.NodeCount())
			}
		}
	}()
	errc := make(chan error, 2)
	go func() { errc <- m.ServeNodes(ctx, nl) }()
	go func() { errc <- m.ServeClients(ctx, ul) }()
	err = <-errc
	if err == nil {
		err = <-errc
	}
	return err
}

func masterConfig(cfg *config.Config, o Options, keys link.Keys, listen string) master.Config {
	mc := master.Config{
		PingTimeout: cfg.PingTimeout(),
		Keys:        keys,
		NodeUp:      o.NodeUp,
		LogDir:      o.LogDir,
		LibFile:     o.Libs,
		Log:         o.Log,
	}
	if h := buildinfo.Hash(); h != "unstamped" {
		mc.Build = h
	}
	if ap, err := netip.ParseAddrPort(listen); err == nil && !ap.Addr().IsUnspecified() {
		mc.MasterAddr = ap.Addr().String()
	}
	for n := 0; n < cfg.NodeCount(); n++ {
		a, ok := cfg.NodeAddr(n)
		if !ok {
			continue
		}
		mc.Nodes = append(mc.Nodes, master.NodeDef{Num: n, Addr: a})
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
