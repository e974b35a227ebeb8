// Package bootparam is the contract between the boot server on the master
// (beoserv, which writes a node's kernel command line into its iPXE script)
// and beoclient, PID 1 on the node (which reads /proc/cmdline): every option
// beo puts on a compute node's kernel command line, how it is spelled, and
// its default.
//
// # Options
//
//	beo.master=IP            the master's address on the cluster network (the
//	                         one that served this boot)
//	beo.masters=IP1,IP2,…    the node's masters when it has several, in
//	                         the config's masterorder: bpslave connects to
//	                         every one, beo.master being its primary
//	                         (MasterList; pkg/slave masters.go)
//	beo.bproc=PORT           bpmaster's TCP port (933; config `server bproc`)
//	beo.http=PORT            the boot server's HTTP port (80; `server http`)
//	beo.rootfs=PATH          the rootfs archive's URL path on that HTTP server
//	                         (/boot/rootfs.cpio); fetched and unpacked into RAM
//	beo.stats=PORT           recvstats' UDP port (5545; `server beostats`)
//	beo.kickback=PORT        the kickback name service's TCP port (3045)
//	beo.modules=M1,M2        kernel modules the node's fstab needs (nfsv4 for
//	                         NFS lines, ext4 for local ones; from fstab(.N),
//	                         pkg/fstab Table.Modules): init starts loading
//	                         them, with their dependencies, as soon as
//	                         stage 2 starts, so they are in by the time
//	                         the master asks for the mounts
//	rootfs_size=SIZE         size cap of the node's RAM root (tmpfs size=,
//	                         e.g. 2g or 50%; default 50%)
//	syslog_server=IP[:PORT]  where beoklogd sends kernel and syslog messages
//	                         (default: the master, UDP 514 / `server syslog`)
//	legacy_syslog=1          keep the node's own timestamp in forwarded
//	                         messages (the pre-beo double-timestamp form)
//	console=…                the kernel's own; beoclient also writes its
//	                         messages there
//
// Options beo does not know are left for the kernel and other readers;
// Parse ignores them. Everything beo-specific carries the "beo." prefix so
// it can never collide with a kernel parameter.
package bootparam

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Defaults for the ports, matching config.DefaultPorts.
const (
	DefaultBProc    = 933
	DefaultHTTP     = 80
	DefaultStats    = 5545
	DefaultKickback = 3045
	DefaultSyslog   = 514
	DefaultRootfs   = "/boot/rootfs.cpio"
	DefaultRootSize = "50%"
)

// Params are the beo options of one node's kernel command line.
type Params struct {
	Master       netip.Addr
	Masters      string // comma list of the node's masters in masterorder; "" = Master alone
	BProc        uint16
	HTTP         uint16
	Rootfs       string // URL path on the master's HTTP server
	Stats        uint16
	Kickback     uint16
	RootfsSize   string
	SyslogServer string // host or host:port; "" = the master
	LegacySyslog bool
	Modules      string // comma list of module names; "" = none
}

// Defaults returns Params with every port and path at its default and no
// master address.
func Defaults() Params {
	return Params{BProc: DefaultBProc, HTTP: DefaultHTTP, Rootfs: DefaultRootfs,
		Stats: DefaultStats, Kickback: DefaultKickback, RootfsSize: DefaultRootSize}
}

// String formats p as kernel command-line options, in a fixed order.
// Options at their default value are still written, so a node's log shows
// exactly what it was told.
func (p Params) String() string {
	var b []string
	if p.Master.IsValid() {
		b = append(b, "beo.master="+p.Master.String())
	}
	if p.Masters != "" {
		b = append(b, "beo.masters="+p.Masters)
	}
	b = append(b,
		"beo.bproc="+strconv.Itoa(int(p.BProc)),
		"beo.http="+strconv.Itoa(int(p.HTTP)),
		"beo.rootfs="+p.Rootfs,
		"beo.stats="+strconv.Itoa(int(p.Stats)),
		"beo.kickback="+strconv.Itoa(int(p.Kickback)),
	)
	if p.RootfsSize != "" {
		b = append(b, "rootfs_size="+p.RootfsSize)
	}
	if p.SyslogServer != "" {
		b = append(b, "syslog_server="+p.SyslogServer)
	}
	if p.LegacySyslog {
		b = append(b, "legacy_syslog=1")
	}
	if p.Modules != "" {
		b = append(b, "beo.modules="+p.Modules)
	}
	return strings.Join(b, " ")
}

// Parse reads the beo options from a kernel command line (the text of
// /proc/cmdline). Missing options keep their defaults; a malformed value
// of a beo option is an error naming it. Unknown options are ignored.
func Parse(cmdline string) (Params, error) {
	p := Defaults()
	for _, f := range strings.Fields(cmdline) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		var err error
		switch k {
		case "beo.master":
			p.Master, err = netip.ParseAddr(v)
		case "beo.masters":
			for _, m := range strings.Split(v, ",") {
				if _, err = netip.ParseAddr(m); err != nil {
					break
				}
			}
			p.Masters = v
		case "beo.bproc":
			p.BProc, err = port(v)
		case "beo.http":
			p.HTTP, err = port(v)
		case "beo.stats":
			p.Stats, err = port(v)
		case "beo.kickback":
			p.Kickback, err = port(v)
		case "beo.rootfs":
			if !strings.HasPrefix(v, "/") {
				err = fmt.Errorf("want an absolute URL path")
			}
			p.Rootfs = v
		case "rootfs_size":
			p.RootfsSize = v
		case "syslog_server":
			p.SyslogServer = v
		case "legacy_syslog":
			p.LegacySyslog = v == "1" || v == "yes" || v == "true"
		case "beo.modules":
			for _, m := range strings.Split(v, ",") {
				if !moduleName(m) {
					err = fmt.Errorf("bad module name %q", m)
					break
				}
			}
			p.Modules = v
		}
		if err != nil {
			return p, fmt.Errorf("kernel command line: %s: %w", f, err)
		}
	}
	return p, nil
}

func port(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return uint16(n), nil
}

// MasterList returns the node's masters: Master, the one that booted it
// (its primary: pkg/slave masters.go), then the others of Masters in
// their order (an entry that is no address left out).
func (p Params) MasterList() []netip.Addr {
	l := []netip.Addr{p.Master}
	for _, m := range strings.Split(p.Masters, ",") {
		if a, err := netip.ParseAddr(m); err == nil && a != p.Master {
			l = append(l, a)
		}
	}
	return l
}

// ModuleList returns Modules as a list (nil for none).
func (p Params) ModuleList() []string {
	if p.Modules == "" {
		return nil
	}
	return strings.Split(p.Modules, ",")
}

// moduleName reports a kernel module name: letters, digits, _ and -.
func moduleName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
