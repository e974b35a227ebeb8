package head

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/kickback"
	"github.com/beo-cluster/beo/pkg/logfwd"
	"github.com/beo-cluster/beo/pkg/nat"
	"github.com/beo-cluster/beo/pkg/nss"
	"github.com/beo-cluster/beo/pkg/stats"
)

// nodeDaemons opens the listeners of the daemons that serve nodes on the
// cluster address (o.Boot.Addr) and returns them ready to run:
//
//   - the log receiver (UDP `server syslog`, 514): node kernel and syslog
//     messages appended to LogDir/messages.N — unless a syslog daemon
//     already holds the port, in which case node logs go there and beo
//     stays out of the way;
//   - kickbackdaemon (TCP `server kickback`, 3045): names for anyone on the
//     cluster network, a user's passwd and group entries only for a node
//     running a job of that user.
//
// Both bind the cluster address only, never every interface.
func (h *Head) nodeDaemons() error {
	o, cur, m := h.o, h.cfg.Config, h.m
	ip := o.Boot.Addr.Addr()
	ports := cur().Ports()

	pc, err := logfwd.ListenUDP(net.JoinHostPort(ip.String(), strconv.Itoa(int(ports.Syslog))))
	switch {
	case errors.Is(err, logfwd.ErrSyslogListening):
		o.Log.Info("a syslog daemon holds the syslog port: node logs go there", "port", ports.Syslog)
	case err != nil:
		return fmt.Errorf("log receiver: %w", err)
	default:
		h.closers = append(h.closers, pc)
		r := &logfwd.Receiver{Dir: o.LogDir, Log: o.Log,
			Node: func(a netip.Addr) (int, bool) { return cur().NodeByAddr(a) }}
		h.units = append(h.units, Unit{"log receiver", func(ctx context.Context) error { return r.Serve(ctx, pc) }})
	}

	kd, err := kickback.New(kickback.Config{Cluster: cur, Master: ip, UsesUID: m.UsesUID, Log: o.Log})
	if err != nil {
		return err
	}
	kl, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(int(ports.Kickback))))
	if err != nil {
		return fmt.Errorf("kickback: %w", err)
	}
	h.closers = append(h.closers, kl)
	h.units = append(h.units, Unit{"kickbackdaemon", func(ctx context.Context) error { return kd.Serve(ctx, kl) }})
	return nil
}

// writeNames writes the cluster's names under o.NamesRoot (pkg/nss). A
// failure is logged, not fatal: names are a convenience, the cluster runs
// without them.
func writeNames(o Options, cfg *config.Config) {
	if o.NamesRoot == "" || o.Boot == nil {
		return
	}
	changed, err := nss.WriteFiles(o.NamesRoot, nss.FromConfig(cfg, o.Boot.Addr.Addr()))
	if err != nil {
		o.Log.Warn("beonss: names not written", "err", err)
		return
	}
	if len(changed) > 0 {
		o.Log.Info("beonss: names written", "files", changed)
	}
}

// monitorDaemons opens recvstats (o.Stats) and the beostatus dashboard
// (o.Status) on the shared node table: a host that sends stats from a
// configured node address without running bpslave shows as alive.
func (h *Head) monitorDaemons() error {
	o, cur, m := h.o, h.cfg.Config, h.m
	if o.Stats == "" {
		return nil
	}
	rcv, err := stats.NewReceiver(stats.Config{
		Resolve: func(a netip.Addr) (int, bool) { return cur().NodeByAddr(a) },
		Table:   m.Table(), Log: o.Log})
	if err != nil {
		return err
	}
	addr := o.Stats
	if addr == "config" {
		addr = ":" + strconv.Itoa(int(cur().Ports().BeoStats))
	}
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return fmt.Errorf("recvstats: %w", err)
	}
	h.closers = append(h.closers, pc)
	h.rcv = rcv
	h.units = append(h.units, Unit{"recvstats", func(ctx context.Context) error { return rcv.Serve(ctx, pc) }})
	if o.Status == "" {
		return nil
	}
	dash, err := dashboard.New(dashboard.Config{Table: m.Table(), Stats: rcv, Jobs: m, Log: o.Log, Hosts: o.StatusNames})
	if err != nil {
		return err
	}
	hl, err := net.Listen("tcp", o.Status)
	if err != nil {
		return fmt.Errorf("beostatus: %w", err)
	}
	h.closers = append(h.closers, hl)
	o.Log.Info("beostatus dashboard", "url", "http://"+hl.Addr().String()+"/")
	h.units = append(h.units, Unit{"beostatus", func(ctx context.Context) error { return dash.Serve(ctx, hl) }})
	return nil
}

// forwarding starts the master's IP forwarding (pkg/nat: an nftables
// table of its own, ip_forward on) when the config has `ipforward`; the
// head's Close stops it (removes the table, restores ip_forward). It
// needs the cluster interface and address, so only with the boot server;
// without one it logs that nothing is forwarded. ipforward is read here,
// once: a reload that changes it is logged by the boot server.
func (h *Head) forwarding() error {
	o := h.o
	switch {
	case !h.cfg.Config().IPForward():
		return nil
	case o.Boot == nil:
		o.Log.Warn("ipforward: no boot server, so no cluster interface: nothing is forwarded")
		return nil
	}
	n, err := nat.Start(nat.Config{Cluster: o.Boot.Addr, Iface: o.Boot.Iface, Log: o.Log})
	if err != nil {
		return fmt.Errorf("ipforward: %w", err)
	}
	h.closers = append(h.closers, closerFunc(func() error {
		if err := n.Close(); err != nil {
			o.Log.Error("ipforward: forwarding not removed", "err", err)
		}
		return nil
	}))
	return nil
}

// closerFunc is a Close of the head's: the forwarding, the socket file.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }
