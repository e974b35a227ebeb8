// Package kickbackdaemon implements the kickbackdaemon applet: the
// master's side of the cluster's name service (see pkg/kickback), alone.
//
//	kickbackdaemon [-config PATH] [-master IP] [-listen ADDR] [-grant NODE:UID]...
//
// Run alone it serves the names to every node and non-Scyld host, but
// refuses every user request not granted with -grant (node NODE may always
// read uid UID's entries: a service account on a dedicated node): only
// `beo master`, which holds the process table, knows which node has a job
// of which user. -master defaults to the
// IPv4 address of the config's first `interface`.
package kickbackdaemon

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/head"
	"github.com/beo-cluster/beo/pkg/kickback"
	"github.com/beo-cluster/beo/pkg/nss"
	"github.com/beo-cluster/beo/pkg/ratelog"
)

const usage = "usage: kickbackdaemon [-config PATH] [-master IP] [-listen ADDR] [-grant NODE:UID]..."

// Run is the kickbackdaemon applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet("kickbackdaemon", usage, stdio.Err)
	cfgPath := fs.String("config", config.DefaultPath, "cluster config file")
	masterIP := fs.String("master", "", "the master's cluster address (default: the first `interface` line's IPv4 address)")
	listen := fs.String("listen", "", "listen address (default :PORT from `server kickback`)")
	grants := map[[2]uint64]bool{}
	fs.Func("grant", "NODE:UID: node NODE may read uid UID's passwd and group entries (repeatable)", func(v string) error {
		n, u, ok := strings.Cut(v, ":")
		node, err1 := strconv.ParseUint(n, 10, 31)
		uid, err2 := strconv.ParseUint(u, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("want NODE:UID, got %q", v)
		}
		grants[[2]uint64{node, uid}] = true
		return nil
	})
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &applets.Usage{Line: usage, Msg: "unexpected arguments"}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	log := slog.New(ratelog.New(slog.NewTextHandler(stdio.Err, nil), ratelog.Options{}))
	master, err := applets.AddrFlag(usage, "master", *masterIP)
	if err != nil {
		return err
	}
	cfg, master, err := nss.LoadCluster(*cfgPath, set["config"], master)
	if err != nil {
		return err
	}
	for _, d := range cfg.Diags() {
		log.Warn(d.String())
	}
	d, err := kickback.New(kickback.Config{
		Cluster: func() *config.Config { return cfg },
		Master:  master,
		UsesUID: func(node int, uid uint32) bool { return grants[[2]uint64{uint64(node), uint64(uid)}] },
		Log:     log,
	})
	if err != nil {
		return err
	}
	addr := *listen
	if addr == "" {
		addr = ":" + strconv.Itoa(int(cfg.Ports().Kickback))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Info("kickbackdaemon: serving", "addr", ln.Addr(), "master", master)
	return head.Run(ctx, log, nil, head.Unit{Name: "kickbackdaemon", Serve: func(ctx context.Context) error { return d.Serve(ctx, ln) }})
}
