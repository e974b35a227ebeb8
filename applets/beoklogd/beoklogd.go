// Package beoklogd implements the beoklogd applet: a compute node's log
// forwarder (see pkg/logfwd). It sends the kernel's messages (/dev/kmsg,
// from the oldest one the kernel still holds, so boot messages from before
// the network came up arrive too) and what local programs log to /dev/log
// to the master's syslog over UDP, RFC 3164.
//
//	beoklogd [-server HOST[:PORT]] [-legacy] [-hostname NAME] [-kmsg PATH] [-devlog PATH] [-cmdline PATH]
//
// Without -server it reads the kernel command line (pkg/bootparam):
// syslog_server= if given, else beo.master= on UDP 514; legacy_syslog=1
// there turns -legacy on. beoclient starts it as soon as the network is
// up.
//
//	beoklogd -receive [-listen ADDR] [-dir DIR] [-config PATH]
//
// is the master's end alone (`beo master` runs the same receiver): when no
// syslog daemon has the syslog port (UDP 514, `server syslog`), it takes
// it and appends each node's messages to DIR/messages.N
// (/var/log/beowulf); when one has, it says so and exits 0, since node
// messages then go to that daemon.
package beoklogd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bootparam"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/logfwd"
)

const usage = "usage: beoklogd [-server HOST[:PORT]] [-legacy] [-hostname NAME] [-kmsg PATH] [-devlog PATH] [-cmdline PATH]\n       beoklogd -receive [-listen ADDR] [-dir DIR] [-config PATH]"

// Run is the beoklogd applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet("beoklogd", usage, stdio.Err)
	server := fs.String("server", "", "syslog server HOST[:PORT] (default: syslog_server= or beo.master= from the kernel command line, port 514)")
	legacy := fs.Bool("legacy", false, "send the node's own timestamp (legacy_syslog=1)")
	hostname := fs.String("hostname", "", "identity to send (default: the host name, or the node's address while it has none)")
	kmsg := fs.String("kmsg", "/dev/kmsg", "kernel log device; \"none\" to skip")
	devlog := fs.String("devlog", "/dev/log", "syslog socket to serve; \"none\" to skip")
	cmdline := fs.String("cmdline", "/proc/cmdline", "kernel command line to read when -server is absent")
	receive := fs.Bool("receive", false, "be the master's receiver instead")
	listen := fs.String("listen", "", "-receive: address to listen on (default :PORT from `server syslog`)")
	dir := fs.String("dir", logfwd.DefaultDir, "-receive: directory of the messages.N files")
	cfgPath := fs.String("config", config.DefaultPath, "-receive: cluster config (node addresses, syslog port)")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &applets.Usage{Line: usage, Msg: "unexpected arguments"}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *receive {
		return receiveLogs(ctx, *listen, *dir, *cfgPath, set["config"], stdio)
	}
	addr, cmdLegacy, err := target(*server, *cmdline)
	if err != nil {
		return err
	}
	if !set["legacy"] {
		*legacy = cmdLegacy
	}
	log := slog.New(slog.NewTextHandler(stdio.Err, nil))
	conn, err := dial(ctx, addr, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	boot, err := logfwd.BootTime()
	if err != nil {
		return fmt.Errorf("boot time: %w", err)
	}
	fw := &logfwd.Forwarder{Conn: conn, Legacy: *legacy, Boot: boot, Log: log}
	if *hostname != "" {
		h := *hostname
		fw.Host = func() string { return h }
	}
	log.Info("beoklogd: forwarding", "server", addr, "legacy", *legacy)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	if *kmsg != "none" {
		f, err := os.Open(*kmsg)
		if err != nil {
			return fmt.Errorf("kernel log: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- fw.Kmsg(ctx, f)
		}()
	}
	if *devlog != "none" {
		pc, err := logfwd.ListenDevLog(*devlog)
		if err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("syslog socket: %w", err)
		}
		defer os.Remove(*devlog)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- fw.ServeDevLog(ctx, pc)
		}()
	}
	var first error
	go func() { wg.Wait(); close(errs) }()
	for err := range errs {
		if err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// receiveLogs runs the master's receiver alone.
func receiveLogs(ctx context.Context, listen, dir, cfgPath string, explicit bool, stdio applets.IO) error {
	log := slog.New(slog.NewTextHandler(stdio.Err, nil))
	cfg, err := config.Load(cfgPath, config.Options{})
	switch {
	case errors.Is(err, os.ErrNotExist) && !explicit:
		cfg = config.Default()
	case err != nil:
		return err
	}
	if listen == "" {
		listen = ":" + strconv.Itoa(int(cfg.Ports().Syslog))
	}
	pc, err := logfwd.ListenUDP(listen)
	if errors.Is(err, logfwd.ErrSyslogListening) {
		fmt.Fprintf(stdio.Err, "beoklogd: %v: node messages go to it\n", err)
		return nil
	}
	if err != nil {
		return err
	}
	log.Info("beoklogd: receiving", "addr", pc.LocalAddr(), "dir", dir)
	r := &logfwd.Receiver{Dir: dir, Node: cfg.NodeByAddr, Log: log}
	return r.Serve(ctx, pc)
}

// target returns where to send: server, else the kernel command line's
// syslog_server= or master.
func target(server, cmdline string) (string, bool, error) {
	var p bootparam.Params
	if b, err := os.ReadFile(cmdline); err == nil {
		if p, err = bootparam.Parse(string(b)); err != nil {
			return "", false, err
		}
	} else if server == "" {
		return "", false, &applets.Usage{Line: usage, Msg: fmt.Sprintf("no -server and %v", err)}
	}
	if server == "" {
		server = p.SyslogServer
		if server == "" && p.Master.IsValid() {
			server = p.Master.String()
		}
	}
	if server == "" {
		return "", false, &applets.Usage{Line: usage, Msg: "no -server, and the kernel command line names no syslog_server= or beo.master="}
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, strconv.Itoa(bootparam.DefaultSyslog))
	}
	return server, p.LegacySyslog, nil
}

// dial connects the UDP socket, waiting for a route while the network
// comes up.
func dial(ctx context.Context, addr string, log *slog.Logger) (net.Conn, error) {
	backoff := 100 * time.Millisecond
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "udp", addr)
		if err == nil {
			return c, nil
		}
		var ae *net.AddrError
		if errors.As(err, &ae) || ctx.Err() != nil {
			return nil, fmt.Errorf("syslog server %s: %w", addr, err)
		}
		log.Debug("beoklogd: waiting for a route", "server", addr, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
