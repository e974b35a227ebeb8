// Package recvstats implements recvstats alone: the master's stats
// receiver (UDP 5545 by default, `server beostats N`) with its read-only
// HTTP face, beostatus (the dashboard, /api/stats for beostat, /metrics;
// pkg/dashboard). `beo master` runs the same two in-process, sharing
// bpmaster's node table; this applet builds its own table from the config,
// so every host that sends stats shows as alive — a monitoring-only head
// for non-Scyld hosts, and the piece the netns tests run.
//
//	recvstats [-config FILE] [-listen ADDR] [-http ADDR]
//
// -listen defaults to :PORT of `server beostats`; -http to
// 127.0.0.1:5546 (loopback: it shows the whole cluster), "off" disables
// it. SIGHUP re-reads the config (node list and addresses); a config that
// fails validation is refused and the running one kept.
package recvstats

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/head"
	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/stats"
)

const usage = "usage: recvstats [-config FILE] [-listen ADDR] [-http ADDR|off]"

// Run is the recvstats applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet("recvstats", usage, stdio.Err)
	cfgPath := fs.String("config", config.DefaultPath, "cluster config file")
	listen := fs.String("listen", "", "UDP address for samples (default :PORT of `server beostats`)")
	httpAddr := fs.String("http", dashboard.DefaultAddr, "dashboard, /api/stats and /metrics address, or off")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &applets.Usage{Line: usage, Msg: "unexpected arguments"}
	}
	log := slog.New(slog.NewTextHandler(stdio.Err, nil))
	rel, _, err := head.Load(*cfgPath, config.Options{}, log)
	if err != nil {
		return err
	}
	cfg := rel.Config()
	tab := nodes.New(nil, tableNodes(cfg)...)
	rcv, err := stats.NewReceiver(stats.Config{
		Resolve: func(a netip.Addr) (int, bool) { return rel.Config().NodeByAddr(a) },
		Table:   tab, Log: log})
	if err != nil {
		return err
	}
	addr := *listen
	if addr == "" {
		addr = ":" + strconv.Itoa(int(cfg.Ports().BeoStats))
	}
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return fmt.Errorf("listen for stats: %w", err)
	}
	defer pc.Close()
	var hl net.Listener
	if *httpAddr != "off" && *httpAddr != "" {
		if hl, err = net.Listen("tcp", *httpAddr); err != nil {
			return fmt.Errorf("listen for beostatus: %w", err)
		}
		defer hl.Close()
	}
	httpShown := "off"
	if hl != nil {
		httpShown = "http://" + hl.Addr().String() + "/"
	}
	log.Info("recvstats listening", "udp", pc.LocalAddr(), "beostatus", httpShown, "count", cfg.NodeCount())

	rel.Follow(func(c *config.Config) { tab.Reconfigure(tableNodes(c)...) })
	units := []head.Unit{{Name: "recvstats", Serve: func(ctx context.Context) error { return rcv.Serve(ctx, pc) }}}
	if hl != nil {
		d, err := dashboard.New(dashboard.Config{Table: tab, Stats: rcv, Log: log})
		if err != nil {
			return err
		}
		units = append(units, head.Unit{Name: "beostatus", Serve: func(ctx context.Context) error { return d.Serve(ctx, hl) }})
	}
	return head.Run(ctx, log, rel, units...)
}

// tableNodes lists every node slot the config has, with its address.
func tableNodes(cfg *config.Config) []nodes.Node {
	var out []nodes.Node
	for n := range cfg.NodeCount() {
		a, _ := cfg.NodeAddr(n)
		out = append(out, nodes.Node{Num: n, Addr: a})
	}
	return out
}
