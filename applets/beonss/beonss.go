// Package beonss implements the beonss applet: the cluster's names from
// /etc/beowulf/config (see pkg/nss), shown or written.
//
//	beonss [-config PATH] [-master IP] [-w] [-root DIR]
//
// Without -w it prints what the generated blocks of /etc/hosts,
// /etc/ethers and /etc/netgroup hold. With -w it writes them into ROOT's
// files (managed blocks, the admin's lines untouched) and makes
// ROOT/etc/nsswitch.conf read them; `beo master` does the same when it
// starts and on reload. -master defaults to the IPv4 address of the
// config's first `interface`.
package beonss

import (
	"context"
	"flag"
	"fmt"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/nss"
)

const usage = "usage: beonss [-config PATH] [-master IP] [-w] [-root DIR]"

// Run is the beonss applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet("beonss", usage, stdio.Err)
	cfgPath := fs.String("config", config.DefaultPath, "cluster config file")
	masterIP := fs.String("master", "", "the master's cluster address (default: the first `interface` line's IPv4 address)")
	write := fs.Bool("w", false, "write ROOT/etc/hosts, ethers, netgroup and nsswitch.conf instead of printing")
	root := fs.String("root", "/", "filesystem whose etc/ files -w writes")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &applets.Usage{Line: usage, Msg: "unexpected arguments"}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	master, err := applets.AddrFlag(usage, "master", *masterIP)
	if err != nil {
		return err
	}
	cfg, master, err := nss.LoadCluster(*cfgPath, set["config"], master)
	if err != nil {
		return err
	}
	for _, d := range cfg.Diags() {
		fmt.Fprintln(stdio.Err, d)
	}
	if !master.IsValid() {
		fmt.Fprintln(stdio.Err, "beonss: master address unknown (no -master, no usable `interface`): no names master and .-1")
	}
	d := nss.FromConfig(cfg, master)
	if !*write {
		fmt.Fprintf(stdio.Out, "# hosts\n%s# ethers\n%s# netgroup\n%s", d.HostsBlock(), d.EthersBlock(), d.NetgroupBlock())
		return nil
	}
	changed, err := nss.WriteFiles(*root, d)
	for _, f := range changed {
		fmt.Fprintln(stdio.Out, f)
	}
	return err
}
