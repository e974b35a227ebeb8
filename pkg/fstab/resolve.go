package fstab

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Vars are what an fstab means on one node.
type Vars struct {
	Master netip.Addr // $MASTER: the master's cluster address
	Node   netip.Addr // the node's address (clientaddr= of NFS mounts); may be invalid
}

// Mount is one line resolved for a node: what the node mounts.
type Mount struct {
	File string
	Line int
	// Source, Target, Type and Options (a comma list of flags and file
	// system data, fstab-only words dropped) are what the node passes to
	// mount(2) through KernelArgs. Type swap means swapon(2) of Source.
	Source, Target, Type, Options string
	Fatal                         bool   // a failure makes the node error
	Export                        string // the master's path an NFS mount of the master needs exported
	Mirror                        bool   // Export mounted at the same path: the node sees the master's tree there
}

// Where is "file:line", for messages.
func (m Mount) Where() string { return m.File + ":" + strconv.Itoa(m.Line) }

// Resolve returns the lines of t a node mounts, in file order, with the
// variables replaced and NFS options completed (see the package doc), and
// the bad lines, which are not mounted. noauto lines are in neither.
func (t *Table) Resolve(v Vars) (ms []Mount, bad []Entry) {
	if t == nil {
		return nil, nil
	}
	master := v.Master.Unmap().String()
	for _, e := range t.Entries {
		if e.Bad != "" {
			bad = append(bad, e)
			continue
		}
		if !e.Auto() {
			continue
		}
		m := Mount{File: t.File, Line: e.Line, Source: e.Source, Target: e.Target, Type: e.Type, Fatal: e.Fatal()}
		var opts []string
		for _, o := range e.Options {
			if !fstabOnly(o) {
				opts = append(opts, strings.ReplaceAll(o, VarMaster, master))
			}
		}
		switch {
		case e.Source == VarRAMDisk:
			m.Source, m.Type = "tmpfs", "tmpfs"
			if e.Type == "ramfs" {
				m.Source, m.Type = "ramfs", "ramfs"
			}
		case e.NFS():
			host, p, _ := splitNFS(e.Source)
			if p2, _, ok := e.Export(v.Master); ok {
				m.Export, m.Mirror = p2, p2 == e.Target
			}
			if host == VarMaster {
				host = master
			}
			m.Source = host + ":" + p
			if a, err := netip.ParseAddr(host); err == nil && a.Is6() && !a.Is4In6() {
				m.Source = "[" + host + "]:" + p
			}
			m.Type, opts = nfsOptions(e.Type, opts, host, v.Node)
		default:
			m.Source = strings.ReplaceAll(e.Source, VarMaster, master)
		}
		m.Options = strings.Join(opts, ",")
		ms = append(ms, m)
	}
	return ms, bad
}

// nfsOptions completes an NFS line's options the way mount.nfs would for
// the kernel: version 4.2 by default (type nfs4), addr=, clientaddr= and
// sec=sys (see the package doc, NFS).
func nfsOptions(typ string, opts []string, server string, node netip.Addr) (string, []string) {
	vers := ""
	for _, o := range opts {
		if k, v, ok := strings.Cut(o, "="); ok && (k == "vers" || k == "nfsvers") {
			vers = v
		}
	}
	switch {
	case typ == "nfs4" || vers == "" || strings.HasPrefix(vers, "4"):
		typ = "nfs4"
		if vers == "" {
			opts = append(opts, "vers=4.2")
		}
	default:
		typ = "nfs"
	}
	if !hasKey(opts, "addr") {
		opts = append(opts, "addr="+server)
	}
	if node.IsValid() && !hasKey(opts, "clientaddr") {
		opts = append(opts, "clientaddr="+node.Unmap().String())
	}
	if !hasKey(opts, "sec") {
		opts = append(opts, "sec=sys")
	}
	return typ, opts
}

func hasKey(opts []string, key string) bool {
	return slices.ContainsFunc(opts, func(o string) bool { k, _, _ := strings.Cut(o, "="); return k == key })
}

// fstabOnly reports an option only fstab and its tools read.
func fstabOnly(o string) bool {
	switch o {
	case "defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group", "_netdev", "nofail", "nonfatal":
		return true
	}
	return strings.HasPrefix(o, "x-") || strings.HasPrefix(o, "comment=")
}

// flagOpts are the options that are mount(2) flags: set, or cleared when
// clear is true.
var flagOpts = map[string]struct {
	flag  uintptr
	clear bool
}{
	"ro": {unix.MS_RDONLY, false}, "rw": {unix.MS_RDONLY, true},
	"nosuid": {unix.MS_NOSUID, false}, "suid": {unix.MS_NOSUID, true},
	"nodev": {unix.MS_NODEV, false}, "dev": {unix.MS_NODEV, true},
	"noexec": {unix.MS_NOEXEC, false}, "exec": {unix.MS_NOEXEC, true},
	"sync": {unix.MS_SYNCHRONOUS, false}, "async": {unix.MS_SYNCHRONOUS, true},
	"dirsync": {unix.MS_DIRSYNC, false},
	"noatime": {unix.MS_NOATIME, false}, "atime": {unix.MS_NOATIME, true},
	"nodiratime": {unix.MS_NODIRATIME, false}, "diratime": {unix.MS_NODIRATIME, true},
	"relatime": {unix.MS_RELATIME, false}, "norelatime": {unix.MS_RELATIME, true},
	"strictatime": {unix.MS_STRICTATIME, false}, "nostrictatime": {unix.MS_STRICTATIME, true},
	"lazytime": {unix.MS_LAZYTIME, false}, "nolazytime": {unix.MS_LAZYTIME, true},
	"mand": {unix.MS_MANDLOCK, false}, "nomand": {unix.MS_MANDLOCK, true},
	"silent": {unix.MS_SILENT, false}, "loud": {unix.MS_SILENT, true},
	"bind": {unix.MS_BIND, false}, "rbind": {unix.MS_BIND | unix.MS_REC, false},
}

// KernelArgs splits a resolved Options list into mount(2) flags and the
// file system's data string (the options that are not flags, in order).
func KernelArgs(options string) (flags uintptr, data string) {
	var rest []string
	for _, o := range strings.Split(options, ",") {
		if o == "" || fstabOnly(o) {
			continue
		}
		if f, ok := flagOpts[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		rest = append(rest, o)
	}
	return flags, strings.Join(rest, ",")
}

// Modules names the kernel modules a mount of type typ needs loaded
// first (with their dependencies, from the node's modules.dep): the
// node's kernel cannot load them on demand, having no modprobe. Types the
// kernel always has give none; a name that is no module is ignored by the
// loader (a file system built into the kernel). ext2 and ext3 are served
// by ext4 where the kernel has no module of their own, and the ext4
// family asks the crypto API for crc32c (metadata checksums), which
// without modprobe must be loaded first too.
func Modules(typ string) []string {
	switch typ {
	case "nfs4":
		return []string{"nfsv4"}
	case "nfs":
		return []string{"nfsv3", "nfsv2"}
	case "ext4":
		return []string{"crc32c_generic", "ext4"}
	case "ext2", "ext3":
		return []string{"crc32c_generic", typ, "ext4"}
	case "proc", "sysfs", "devpts", "devtmpfs", "tmpfs", "ramfs", "none", "swap", "cgroup", "cgroup2", "mqueue", "bpf", "securityfs", "debugfs", "tracefs", "hugetlbfs", "pstore":
		return nil
	}
	return []string{typ}
}

// MountModules are the modules Modules names for the file systems beo's
// boot image carries (NFS and ext4): a node loads them, and what only
// they need, when a mount asks for them, not at boot (pkg/pid1).
func MountModules() []string {
	var out []string
	for _, typ := range []string{"nfs4", "nfs", "ext4"} {
		for _, m := range Modules(typ) {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}

// Modules returns the kernel modules the table's mounts need (Modules of
// each good, auto line's type as Resolve gives it: nfs4 for an nfs line
// without a 2 or 3 version), in line order, each once. A nil Table needs
// none. The boot server names them on a node's kernel command line, so
// the node starts loading them as it boots (bootparam Modules).
func (t *Table) Modules() []string {
	if t == nil {
		return nil
	}
	ms, _ := t.Resolve(Vars{})
	var out []string
	for _, m := range ms {
		for _, n := range Modules(m.Type) {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}
