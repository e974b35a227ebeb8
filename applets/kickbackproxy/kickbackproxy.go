// Package kickbackproxy implements the kickbackproxy applet: the node side
// of the cluster's name service (see pkg/kickback and pkg/nss). It keeps
// the node's /etc/hosts, /etc/ethers and /etc/netgroup (managed blocks)
// and /etc/nsswitch.conf in step with the master, and fetches the passwd
// and group entries of a job's user when bpslave asks on its unix socket.
//
//	kickbackproxy [-server HOST[:PORT]] [-root DIR] [-socket PATH] [-refresh DURATION] [-src ADDR] [-cmdline PATH] [-once]
//
// Without -server it reads the kernel command line (pkg/bootparam):
// beo.master= and beo.kickback=. A non-Scyld host runs it with
// -server MASTER -socket none (or -once from cron) to resolve the
// cluster's names.
package kickbackproxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bootparam"
	"github.com/beo-cluster/beo/pkg/kickback"
)

const usage = "usage: kickbackproxy [-server HOST[:PORT]] [-root DIR] [-socket PATH] [-refresh DURATION] [-src ADDR] [-cmdline PATH] [-once]"

// Run is the kickbackproxy applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet("kickbackproxy", usage, stdio.Err)
	server := fs.String("server", "", "kickback daemon HOST[:PORT] (default: beo.master= and beo.kickback= from the kernel command line)")
	root := fs.String("root", "/", "filesystem whose etc/ files are written")
	socket := fs.String("socket", kickback.DefaultSocket, "unix socket bpslave asks for a job's user; \"none\" for no socket")
	refresh := fs.Duration("refresh", time.Minute, "how often to fetch the names again")
	src := fs.String("src", "", "local address to connect from")
	cmdline := fs.String("cmdline", "/proc/cmdline", "kernel command line to read when -server is absent")
	once := fs.Bool("once", false, "fetch and write the names once, then exit")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &applets.Usage{Line: usage, Msg: "unexpected arguments"}
	}
	addr, err := target(*server, *cmdline)
	if err != nil {
		return err
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	if *src != "" {
		ip := net.ParseIP(*src)
		if ip == nil {
			return &applets.Usage{Line: usage, Msg: fmt.Sprintf("-src %q: not an IP address", *src)}
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	log := slog.New(slog.NewTextHandler(stdio.Err, nil))
	p := &kickback.Proxy{Client: kickback.Client{Addr: addr, Dialer: d}, Root: *root, Refresh: *refresh, Log: log}
	if *once {
		return p.SyncNames(ctx)
	}
	var ln net.Listener
	if *socket != "none" {
		ln, err = kickback.ListenLocal(*socket)
		if err != nil {
			return fmt.Errorf("local socket: %w", err)
		}
		defer os.Remove(*socket)
	}
	log.Info("kickbackproxy: serving", "server", addr, "root", *root, "socket", *socket)
	return p.Serve(ctx, ln)
}

func target(server, cmdline string) (string, error) {
	if server != "" {
		if _, _, err := net.SplitHostPort(server); err != nil {
			server = net.JoinHostPort(server, strconv.Itoa(kickback.DefaultPort))
		}
		return server, nil
	}
	b, err := os.ReadFile(cmdline)
	if err != nil {
		return "", &applets.Usage{Line: usage, Msg: fmt.Sprintf("no -server and %v", err)}
	}
	p, err := bootparam.Parse(string(b))
	if err != nil {
		return "", err
	}
	if !p.Master.IsValid() {
		return "", &applets.Usage{Line: usage, Msg: "no -server, and the kernel command line has no beo.master="}
	}
	return net.JoinHostPort(p.Master.String(), strconv.Itoa(int(p.Kickback))), nil
}
