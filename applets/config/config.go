// Package config implements `beo config`, the admin's view of
// /etc/beowulf/config:
//
//	beo config check [-master ADDR[/BITS][,ADDR...]] [-m MODULES] [FILE]
//	beo config example
//	beo config fstab-example
//
// check parses FILE (default /etc/beowulf/config) and prints every
// diagnostic to stderr as "file:line: warning|error: message". Ranges are
// checked against the master's addresses: those given with -master
// (repeatable, or a comma list), else the IPv4 addresses of the file's
// interface lines found on this machine. An address given as ADDR/BITS
// (and an interface's address, always) names the cluster network too:
// a range holding its network or broadcast address is an error; without
// one, a range holding an x.x.x.0 or x.x.x.255 address draws a warning.
//
// It also looks at the master as the boot image build would (see
// pkg/config, Options): a bootmodule that the module tree -m MODULES
// (default, as beoboot's: /lib/modules/RELEASE of the running kernel)
// neither has in its modules.dep nor built in is an error — with no
// modules.dep there, names are not checked; a -m tree must have one —
// and a kernelimage or initrdimage file missing here draws a warning.
// The fstab's file system types are checked against the running
// kernel's /proc/filesystems and the tree's kernel/fs modules, besides
// the common ones.
//
// FILE, and every fstab beside it, must be a regular file (a symlink to
// one is fine) of at most 16 MiB (config.MaxFileSize): a device, a FIFO
// or a larger file is refused with an error naming it.
//
// Then it prints what the file means to stdout, one line per item, each
// starting with a keyword so scripts can grep it; values with spaces are
// Go-quoted, "-" means unset or empty:
//
//	nodes 32
//	iprange 10.54.0.100 10.54.0.131
//	hostrange 10.54.10.1 10.54.10.99
//	interface eth1
//	server bproc 933                  (every port, default or not)
//	pingtimeout 60
//	nodeassign append
//	node 15 addr=10.54.0.115 mac=00:a0:d1:e5:c4:6e,00:a0:d1:e5:c4:6f class=centos5u4 sequence=pxe+local stage=pxe kernel=/var/beowulf/boot/vmlinuz-centos5u4_amd64 initrd=/var/beowulf/boot/initrd-centos5u4_amd64.img cmdline="initrd=initrd-centos5u4_amd64.img ksdevice=eth0" names=n15@10.54.0.115,n15-ipmi@10.54.1.115/ipmi line=8
//	host 00:a0:d1:e9:87:ca addr=10.54.10.1 auto=no names=smartswitch line=6
//	ignore 52:54:00:aa:bb:cc line=34
//
// node lines give the effective boot spec (see pkg/config for the
// precedence); kernel, initrd and cmdline are a value, "none" (do not
// provide) or "-" (unset: the boot server's own). names are NAME@ADDR,
// with /GROUP when the nodename line gives one. It exits 0 when there are
// only warnings, 1 ("N errors") when there are errors — a file that is not
// text, has no directive or describes no node is one — and 1 when FILE
// cannot be read; a missing file's message points to `beo config example`.
//
// check also checks the fstab files beside FILE (DIR/fstab and each
// DIR/fstab.N, pkg/fstab): their diagnostics go to stderr the same way
// and count among the errors, and stdout gets "fstab FILE mounts=N" per
// file. A fstab.NAME that is no node's, or names a node the config does
// not have, draws a warning.
//
// example prints a commented config to start from: the built-in defaults,
// each directive explained, the optional ones commented out
// (config.ExampleText). check reads it with no diagnostic.
// fstab-example prints the commented default fstab (fstab.ExampleText):
// /home read-write and /usr, /opt read-only from the master, nonfatal.
package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/fstab"
)

// usage lists the subcommands.
const usage = "usage: beo config check [-master ADDR[/BITS][,ADDR...]] [-m MODULES] [FILE] | beo config example | beo config fstab-example"

// Run dispatches on the subcommand, args[0].
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	if len(args) == 0 {
		return &applets.Usage{Line: usage, Msg: "missing subcommand"}
	}
	switch args[0] {
	case "check":
		return check(args[1:], stdio)
	case "example":
		if len(args) > 1 {
			return &applets.Usage{Line: usage, Msg: "example takes no arguments"}
		}
		_, err := io.WriteString(stdio.Out, config.ExampleText)
		return err
	case "fstab-example":
		if len(args) > 1 {
			return &applets.Usage{Line: usage, Msg: "fstab-example takes no arguments"}
		}
		_, err := io.WriteString(stdio.Out, fstab.ExampleText)
		return err
	case "-h", "-help", "--help", "help":
		return &applets.Usage{Line: usage}
	}
	return &applets.Usage{Line: usage, Msg: fmt.Sprintf("unknown subcommand %q", args[0])}
}

// masterList is a -master flag: repeatable, each a comma list of
// addresses, each optionally with its network's prefix length
// (10.54.0.1/24).
type masterList struct {
	addrs []netip.Addr
	nets  []netip.Prefix
}

func (l *masterList) String() string {
	s := make([]string, len(l.addrs))
	for i, a := range l.addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

func (l *masterList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil || !p.Addr().Unmap().Is4() {
				return fmt.Errorf("bad address/prefix %q", s)
			}
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			l.addrs = append(l.addrs, p.Addr())
			l.nets = append(l.nets, p)
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("bad address %q", s)
		}
		l.addrs = append(l.addrs, a.Unmap())
	}
	return nil
}

func check(args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet("config check", usage, stdio.Err)
	var masters masterList
	fs.Var(&masters, "master", "the master's cluster `address`es, each optionally ADDR/BITS to name its network (repeatable or comma-separated); default: those of the interface lines")
	modules := fs.String("m", "", "the nodes' module `tree`, as beoboot -m (default: /lib/modules/RELEASE of the running kernel; none there: module names are not checked)")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	path := config.DefaultPath
	switch fs.NArg() {
	case 0:
	case 1:
		path = fs.Arg(0)
	default:
		return &applets.Usage{Line: usage, Msg: "too many arguments"}
	}
	data, err := config.ReadFile(path)
	if errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("%w (`beo config example > %s` writes a commented config to start from)", err, path)
	}
	if err != nil {
		return err
	}
	kern, err := loadKernel(*modules, stdio.Err)
	if err != nil {
		return err
	}
	if len(masters.addrs) == 0 {
		first, _ := config.Parse(path, data, config.Options{})
		masters = interfaceAddrs(first.Interfaces(), stdio.Err)
	}
	opt := config.Options{Masters: masters.addrs, Networks: masters.nets, Module: kern.modules(), Stat: os.Stat}
	c, _ := config.Parse(path, data, opt)
	nerr := 0
	for _, d := range c.Diags() {
		fmt.Fprintf(stdio.Err, "%s:%d: %s: %s\n", d.File, d.Line, d.Severity, d.Msg)
		if d.Severity == config.Error {
			nerr++
		}
	}
	if err := report(stdio.Out, c); err != nil {
		return err
	}
	nerr += checkFstab(path, c, fstab.Options{KnownType: kern.fsType}, stdio.Out, stdio.Err)
	switch nerr {
	case 0:
		return nil
	case 1:
		return errors.New("1 error")
	}
	return fmt.Errorf("%d errors", nerr)
}

// interfaceAddrs returns the IPv4 addresses, with their networks, of the
// named interfaces that exist here, and notes on w when it finds none.
func interfaceAddrs(names []string, w io.Writer) masterList {
	var l masterList
	for _, name := range names {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			continue
		}
		ifAddrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, ia := range ifAddrs {
			if n, ok := ia.(*net.IPNet); ok {
				if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap().Is4() {
					l.addrs = append(l.addrs, a.Unmap())
					if ones, bits := n.Mask.Size(); bits == 32 || bits == 128 {
						l.nets = append(l.nets, netip.PrefixFrom(a.Unmap(), ones-(bits-32)))
					}
				}
			}
		}
	}
	switch {
	case len(names) == 0:
		fmt.Fprintln(w, "note: no interface line and no -master: ranges not checked against the master's address")
	case len(l.addrs) == 0:
		fmt.Fprintf(w, "note: no IPv4 address on interface %s here: ranges not checked against the master's address (use -master)\n",
			strings.Join(names, ", "))
	}
	return l
}
