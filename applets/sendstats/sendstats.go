// Package sendstats implements sendstats, the node side of beostat: every
// few seconds it reads /proc and sends one sample to recvstats on the
// master (pkg/stats). It runs on compute nodes, started by beoclient, and
// on any ordinary Linux host, which then shows as "alive" on the master.
//
//	sendstats [-interval 5s] [-bind ADDR] [-claim N] [MASTER[:PORT]]
//
// Without MASTER it reads the master's address and the stats port from the
// kernel command line (beo.master=, beo.stats=; pkg/bootparam), as on a
// compute node, and reports to each of the node's masters when it has
// several (beo.masters=), so a secondary master's beostat shows its
// "[up]" nodes too. PORT defaults to 5545. The master identifies the sender by
// its source address, so on a multi-homed host -bind picks the address on
// the cluster network.
package sendstats

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bootparam"
	"github.com/beo-cluster/beo/pkg/stats"
)

const usage = "usage: sendstats [-interval DURATION] [-bind ADDR] [-claim N] [-proc DIR] [MASTER[:PORT]]"

// Run is the sendstats applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet("sendstats", usage, stdio.Err)
	interval := fs.Duration("interval", stats.DefaultInterval, "time between samples")
	bind := fs.String("bind", "", "local address to send from (the node's cluster address)")
	claim := fs.Int("claim", -1, "node number to claim; the master rejects samples whose claim disagrees with the source address (-1: none)")
	proc := fs.String("proc", "/proc", "proc file system to read")
	cmdline := fs.String("cmdline", "/proc/cmdline", "kernel command line to read the master from, when MASTER is not given")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return &applets.Usage{Line: usage, Msg: "too many arguments"}
	}
	if *interval < 100*time.Millisecond {
		return &applets.Usage{Line: usage, Msg: "interval must be at least 100ms"}
	}
	if *claim < -1 {
		return &applets.Usage{Line: usage, Msg: "claim must be a node number or -1"}
	}
	targets, err := masterAddrs(fs.Arg(0), *cmdline)
	if err != nil {
		return err
	}
	bindIP, err := applets.AddrFlag(usage, "bind", *bind)
	if err != nil {
		return err
	}
	var laddr *net.UDPAddr
	if bindIP.IsValid() {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(bindIP, 0))
	}
	log := slog.New(slog.NewTextHandler(stdio.Err, nil))
	var conns []net.Conn
	for _, target := range targets {
		conn, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(target))
		if err != nil {
			return fmt.Errorf("dial %s: %w", target, err)
		}
		defer conn.Close()
		log.Info("sendstats", "master", target, "from", conn.LocalAddr(), "interval", *interval)
		conns = append(conns, conn)
	}
	s := stats.Sender{Collector: stats.Collector{Proc: *proc}, Claim: *claim, Interval: *interval, Log: log}
	return s.Serve(ctx, conns...)
}

// masterAddrs is arg (HOST or HOST:PORT, port 5545 by default) or, when
// arg is empty, the masters and port the kernel command line names: the
// one that booted the node first.
func masterAddrs(arg, cmdline string) ([]netip.AddrPort, error) {
	if arg == "" {
		b, err := os.ReadFile(cmdline)
		if err != nil {
			return nil, fmt.Errorf("no MASTER given and %w", err)
		}
		p, err := bootparam.Parse(string(b))
		if err != nil {
			return nil, err
		}
		if !p.Master.IsValid() {
			return nil, &applets.Usage{Line: usage, Msg: "no MASTER given and no beo.master= on the kernel command line"}
		}
		var all []netip.AddrPort
		for _, m := range p.MasterList() {
			all = append(all, netip.AddrPortFrom(m, p.Stats))
		}
		return all, nil
	}
	a, err := masterAddr(arg)
	if err != nil {
		return nil, err
	}
	return []netip.AddrPort{a}, nil
}

// masterAddr is arg: HOST or HOST:PORT, port 5545 by default.
func masterAddr(arg string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(arg); err == nil {
		return ap, nil
	}
	host, port := arg, strconv.Itoa(bootparam.DefaultStats)
	if h, p, err := net.SplitHostPort(arg); err == nil {
		host, port = h, p
	}
	ua, err := net.ResolveUDPAddr("udp", net.JoinHostPort(host, port))
	if err != nil {
		return netip.AddrPort{}, &applets.Usage{Line: usage, Msg: fmt.Sprintf("master %q: %v", arg, err)}
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}
