// Package nodefs is the contract between the compute node's boot image
// and its init: the paths where the builder (initramfs) puts things and
// where PID 1 (pkg/pid1) looks for them. Each side imports this package,
// not the other, so the node's init does not link the image builder
// (cpio writers, compressors) into its decisions, and the builder does
// not depend on init.
//
// Two file systems follow it: the initrd, which the kernel unpacks and
// runs Init from (stage 1), and the node root, a RAM file system that
// stage 1 mounts at NewRoot, copies the binary into and switches to
// (stage 2), into which the rootfs archive is unpacked.
package nodefs

const (
	// Binary is the beo binary, on the initrd and in the node root. Its
	// directory holds one symbolic link to it per applet; stage 1 copies
	// that directory into the node root, and stage 2 refuses a rootfs
	// member that would replace the binary. It lives in a directory of
	// its own, as Warewulf's /warewulf does, so that it shadows nothing
	// of the master's layout the node mirrors (/bin → usr/bin on a
	// usrmerge master) and nothing an fstab mounts over (/usr, /opt).
	Binary = "/beo/bin/beo"
	// Init is the symbolic link to Binary the kernel runs. Only the
	// initrd has it, so its presence tells PID 1 it is in stage 1.
	Init = "/init"
	// NewRoot is the initrd's mount point for the node root.
	NewRoot = "/newroot"
	// ModulesDir holds RELEASE/modules.dep, modules.alias and the .ko
	// files the initrd carries (written and read with pkg/modindex).
	ModulesDir = "/lib/modules"
	// KeysDir holds the master's public key from the rootfs, and the
	// node's own key that bpslave makes beside it (`bpslave -keys`, see
	// pkg/link).
	KeysDir = "/etc/beowulf/keys"
	// CgroupMount is where PID 1 mounts the cgroup v2 hierarchy, and
	// JobsCgroup the group under it that bpslave puts each job's group
	// in (`bpslave -cgroup`); PID 1 kills it when bpslave exits.
	CgroupMount = "/sys/fs/cgroup"
	JobsCgroup  = CgroupMount + "/jobs"
	// LogDir is bpslave's own directory of logs on the node (mode 0700,
	// root's): the whole log of the last failed CRIU checkpoint and
	// restore (checkpoint.log, restore.log). Not /tmp, where a user could
	// put a link for root to write through.
	LogDir = "/var/log/beo"
)

// Mounts are the file systems a node has mounted before its fstab is
// read, target → type: its RAM root, and what init mounts itself
// (pkg/pid1, whose test holds it to this list). pkg/fstab refuses a line
// that would mount something else over one of them.
var Mounts = map[string]string{
	"/":         "tmpfs",
	"/proc":     "proc",
	"/sys":      "sysfs",
	CgroupMount: "cgroup2",
	"/dev":      "devtmpfs",
	"/dev/pts":  "devpts",
	"/dev/shm":  "tmpfs",
	"/run":      "tmpfs",
}
