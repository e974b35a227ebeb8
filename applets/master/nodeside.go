package master

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/beo-cluster/beo/initramfs"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/kickback"
	"github.com/beo-cluster/beo/pkg/logfwd"
	"github.com/beo-cluster/beo/pkg/master"
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
func nodeDaemons(o Options, cur func() *config.Config, m *master.Master) ([]func(context.Context) error, error) {
	ip := o.Boot.Addr.Addr()
	ports := cur().Ports()
	var ds []func(context.Context) error

	pc, err := logfwd.ListenUDP(net.JoinHostPort(ip.String(), strconv.Itoa(int(ports.Syslog))))
	switch {
	case errors.Is(err, logfwd.ErrSyslogListening):
		o.Log.Info("a syslog daemon holds the syslog port: node logs go there", "port", ports.Syslog)
	case err != nil:
		return nil, fmt.Errorf("log receiver: %w", err)
	default:
		r := &logfwd.Receiver{Dir: o.LogDir, Log: o.Log,
			Node: func(a netip.Addr) (int, bool) { return cur().NodeByAddr(a) }}
		ds = append(ds, func(ctx context.Context) error {
			defer pc.Close()
			return r.Serve(ctx, pc)
		})
	}

	kd, err := kickback.New(kickback.Config{Cluster: cur, Master: ip, UsesUID: m.UsesUID, Log: o.Log})
	if err != nil {
		return nil, err
	}
	kl, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(int(ports.Kickback))))
	if err != nil {
		return nil, fmt.Errorf("kickback: %w", err)
	}
	ds = append(ds, func(ctx context.Context) error {
		defer kl.Close()
		return kd.Serve(ctx, kl)
	})
	return ds, nil
}

// forwarding starts the master's IP forwarding (pkg/nat: an nftables
// table of its own, ip_forward on) when the config has `ipforward`, and
// returns what stops it (removes the table, restores ip_forward). It
// needs the cluster interface and address, so only with the boot server;
// without one it logs that nothing is forwarded. ipforward is read here,
// once: a reload that changes it is logged by the boot server.
func forwarding(o Options, cfg *config.Config) (stop func(), err error) {
	stop = func() {}
	switch {
	case !cfg.IPForward():
		return stop, nil
	case o.Boot == nil:
		o.Log.Warn("ipforward: no boot server, so no cluster interface: nothing is forwarded")
		return stop, nil
	}
	n, err := nat.Start(nat.Config{Cluster: o.Boot.Addr, Iface: o.Boot.Iface, Log: o.Log})
	if err != nil {
		return nil, fmt.Errorf("ipforward: %w", err)
	}
	return func() {
		if err := n.Close(); err != nil {
			o.Log.Error("ipforward: forwarding not removed", "err", err)
		}
	}, nil
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
func monitorDaemons(o Options, cur func() *config.Config, m *master.Master) ([]func(context.Context) error, error) {
	if o.Stats == "" {
		return nil, nil
	}
	rcv, err := stats.NewReceiver(stats.Config{
		Resolve: func(a netip.Addr) (int, bool) { return cur().NodeByAddr(a) },
		Table:   m.Table(), Log: o.Log})
	if err != nil {
		return nil, err
	}
	addr := o.Stats
	if addr == "config" {
		addr = ":" + strconv.Itoa(int(cur().Ports().BeoStats))
	}
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("recvstats: %w", err)
	}
	ds := []func(context.Context) error{func(ctx context.Context) error { return rcv.Serve(ctx, pc) }}
	if o.Status == "" {
		return ds, nil
	}
	dash, err := dashboard.New(dashboard.Config{Table: m.Table(), Stats: rcv, Log: o.Log})
	if err != nil {
		pc.Close()
		return nil, err
	}
	hl, err := net.Listen("tcp", o.Status)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("beostatus: %w", err)
	}
	o.Log.Info("beostatus dashboard", "url", "http://"+hl.Addr().String()+"/")
	return append(ds, func(ctx context.Context) error {
		defer hl.Close()
		return dash.Serve(ctx, hl)
	}), nil
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
