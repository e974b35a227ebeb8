// Package beoserv is `beo beoserv`: the boot server alone (DHCP with PXE
// and iPXE, TFTP, HTTP, IPv6 router advertisements) on the cluster
// interface, from /etc/beowulf/config. `beo master` runs the same server
// next to bpmaster; this applet is for running or testing it by itself.
// SIGHUP re-reads the config; a file with errors is refused and the
// running config kept.
package beoserv

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/boot"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/head"
)

const usage = "usage: beoserv [-config FILE] [-iface NAME] [-bootdir DIR] [-tftproot DIR] [-logdir DIR] [-unknown FILE] [-http PORT] [-dhcp-port N] [-tftp-port N] [-no-ra]"

// Run is the beoserv applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	var o boot.Options
	fs := applets.NewFlagSet("beoserv", usage, stdio.Err)
	fs.StringVar(&o.Config, "config", config.DefaultPath, "cluster config file")
	fs.StringVar(&o.Iface, "iface", "", "cluster interface (default: the config's first `interface` line)")
	fs.StringVar(&o.BootDir, "bootdir", boot.DefaultBootDir, "boot package: kernel, initrd, rootfs.cpio")
	fs.StringVar(&o.TFTPRoot, "tftproot", boot.DefaultTFTPRoot, "TFTP root: the iPXE binaries")
	fs.StringVar(&o.LogDir, "logdir", boot.DefaultLogDir, "per-node dialog logs node.N (- for none)")
	fs.StringVar(&o.UnknownFile, "unknown", boot.DefaultUnknownFile, "where MACs that get no node are recorded")
	fs.IntVar(&o.HTTPPort, "http", 0, "HTTP port (default: the config's `server http`, 80; -1 disables)")
	fs.IntVar(&o.DHCPPort, "dhcp-port", 67, "DHCP server port")
	fs.IntVar(&o.TFTPPort, "tftp-port", 69, "TFTP port (-1 disables)")
	fs.BoolVar(&o.NoRA, "no-ra", false, "do not answer IPv6 router solicitations")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &applets.Usage{Line: usage, Msg: "unexpected arguments"}
	}
	o.Log = slog.New(slog.NewTextHandler(stdio.Err, nil))
	if o.Iface == "" {
		iface, err := boot.ConfigIface(o.Config)
		if err != nil {
			return err
		}
		o.Iface = iface
	}
	if !o.Addr.IsValid() {
		p, err := config.InterfaceAddr(o.Iface)
		if err != nil {
			return err
		}
		o.Addr = p
	}
	rel, f, err := head.Load(o.Config, config.Options{Masters: []netip.Addr{o.Addr.Addr()}}, o.Log)
	if err != nil {
		return err
	}
	o.File, o.OnConfig = f, rel.Adopt
	srv, err := boot.New(o)
	if err != nil {
		return err
	}
	rel.Own(srv.SetFile)
	return head.Run(ctx, o.Log, rel, head.Unit{Name: "beoserv", Serve: srv.Serve})
}
