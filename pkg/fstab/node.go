package fstab

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/beo-cluster/beo/pkg/nodefs"
)

// This file holds the checks against what a node is: the file systems
// it mounts itself, and the file system types its kernel has.

// nodeMounts are the file systems a node has mounted before its fstab is
// read (nodefs.Mounts). A line naming one of them with that type finds
// it mounted and does nothing (pkg/slave: a target that already holds a
// mount of the type is left alone), which is why the example fstab may
// list them; any other mount there, or on a directory above one, would
// hide what the node runs on.
var nodeMounts = nodefs.Mounts

// mountType is the type a good line is mounted as: $RAMDISK is a tmpfs
// (a ramfs when the line says ramfs), see Resolve.
func mountType(e Entry) string {
	if e.Source == VarRAMDisk && e.Type != "ramfs" {
		return "tmpfs"
	}
	return e.Type
}

// nodeMount returns why e would mount over one of the node's own file
// systems (nodeMounts), "" when it does not.
func nodeMount(e Entry) string {
	typ := mountType(e)
	if own, ok := nodeMounts[e.Target]; ok {
		if typ == own && !slices.Contains(e.Options, "bind") && !slices.Contains(e.Options, "rbind") {
			return ""
		}
		what := "the node's own " + e.Target
		if e.Target == "/" {
			what = "the node's root, the RAM file system holding its programs"
		}
		return fmt.Sprintf("mounting %s on %s would hide %s (%s, mounted by the node itself) and break the node; only a %s line, which does nothing, may name %s",
			typ, e.Target, what, own, own, e.Target)
	}
	var hidden []string
	for p := range nodeMounts {
		if p != "/" && strings.HasPrefix(p, e.Target+"/") {
			hidden = append(hidden, p)
		}
	}
	if len(hidden) == 0 {
		return ""
	}
	slices.Sort(hidden)
	return fmt.Sprintf("mounting on %s would hide the node's own %s (mounted by the node itself) and break the node",
		e.Target, strings.Join(hidden, " and "))
}

// sourceKey names the file system a good line mounts, for finding one
// mounted at two places: an NFS export (HOST:/PATH), or a device or
// partition (a path, LABEL=, UUID=…). "" for what may well be mounted
// many times: kernel and RAM file systems (their SOURCE is a mere word),
// and bind mounts.
func sourceKey(e Entry) string {
	if e.Bad != "" || slices.Contains(e.Options, "bind") || slices.Contains(e.Options, "rbind") {
		return ""
	}
	if e.NFS() {
		if host, p, ok := splitNFS(e.Source); ok {
			return "nfs " + host + ":" + p
		}
		return ""
	}
	if e.Source == VarRAMDisk {
		return ""
	}
	if strings.HasPrefix(e.Source, "/") {
		return "dev " + path.Clean(e.Source)
	}
	for _, tag := range []string{"LABEL=", "UUID=", "PARTUUID=", "PARTLABEL="} {
		if strings.HasPrefix(e.Source, tag) {
			return "dev " + e.Source
		}
	}
	return ""
}

// KnownType reports whether typ is a file system type Parse knows
// without being told (Options.KnownType): Linux's own, the usual disk
// and network ones, and swap and none (a bind mount's).
func KnownType(typ string) bool {
	switch typ {
	case "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "reiserfs", "vfat", "msdos", "fat", "exfat", "ntfs", "ntfs3",
		"iso9660", "udf", "squashfs", "erofs", "cramfs",
		"nfs", "nfs4", "cifs", "smb3", "9p", "virtiofs", "ceph", "fuse", "overlay",
		"tmpfs", "ramfs", "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "mqueue", "bpf", "securityfs",
		"debugfs", "tracefs", "hugetlbfs", "pstore", "configfs", "fusectl", "binfmt_misc", "efivarfs", "autofs",
		"rpc_pipefs", "nfsd",
		"swap", "none":
		return true
	}
	return false
}

// checkType warns about a type neither common nor known to o: the node's
// kernel may have it as a module, but most likely it is a typo, or a
// FUSE helper's type (fuse.sshfs), which a node without the helper
// cannot mount.
func (t *Table) checkType(e Entry, o Options) {
	if KnownType(e.Type) || (o.KnownType != nil && o.KnownType(e.Type)) {
		return
	}
	t.warnf(e.Line, "unknown file system type %q: the mount fails unless the node's kernel has it (built in or a module)", e.Type)
}
