// Package fstab reads /etc/beowulf/fstab and /etc/beowulf/fstab.N, the
// file systems a compute node mounts as it comes up, the Scyld way.
//
// # Files
//
// The master keeps one file for every node, Base (/etc/beowulf/fstab by
// default), and may keep one per node, Base.N: node N's own file wins
// whole — it replaces Base for that node, nothing is merged (Load,
// NodeFile). No file at all means no mounts: a node gets nothing to do
// and pays nothing for it. beo does not write a default fstab on its own,
// because exporting /home and /usr to the cluster network is the admin's
// decision; `beo config fstab-example` prints the commented default
// (ExampleText) to start from.
//
// # Grammar
//
// fstab(5): one mount per line, fields separated by spaces or tabs,
//
//	SOURCE  TARGET  TYPE  [OPTIONS [DUMP [PASS]]]
//
// OPTIONS is a comma list ("defaults" when absent); DUMP and PASS must be
// numbers when given and are otherwise ignored (a diskless node has
// nothing to dump or check). '#' at the start of a field starts a comment
// that runs to the end of the line; blank lines are ignored. Inside a
// field, \040 stands for a space, \011 a tab, \043 '#' and \134 a
// backslash, as in fstab(5). The file must be UTF-8 text without control
// characters, like /etc/beowulf/config.
//
// SOURCE may use two variables, as Scyld's did:
//
//	$MASTER    the master's address on the cluster network (the node
//	           mounts before any name resolves, so NFS sources must be
//	           addresses: $MASTER:/home or 10.54.0.1:/home, never a name)
//	$RAMDISK   a RAM file system (tmpfs; ramfs when TYPE is ramfs). The
//	           node's root is always one in beo, so `$RAMDISK / …`
//	           finds it mounted and does nothing
//
// $MASTER may appear in OPTIONS too; any other $NAME is an error.
// TARGET is an absolute path (swap lines may say none). TYPE is the
// kernel's file system type, or swap.
//
// # Options
//
//	nonfatal   the node comes up even when this mount fails (the failure
//	           is logged in the node's log, node.N); nofail means the same
//	noauto     the line is not mounted
//	ro, rw, nosuid, nodev, noexec, sync, noatime, relatime, bind …
//	           become mount(2) flags
//	defaults, auto, user, nouser, users, owner, group, _netdev,
//	comment=…, x-…   fstab-only words, dropped
//
// every other option goes to the kernel as file system data. Any failed
// mount without nonfatal makes the node error, and node.N names the file
// and line.
//
// # NFS
//
// nfs and nfs4 lines are mounted by the node kernel's own NFS client
// (there is no mount.nfs helper on a node), so Resolve writes the options
// that helper would: addr=SERVER and clientaddr=NODE, and for nfs4, or
// nfs without vers=/nfsvers= (or with a 4.x one), type nfs4 with
// vers=4.2 unless a version is given. Lines without sec= get sec=sys
// (AUTH_SYS, what beo's exports ask for): a node has no rpc.gssd and no
// Kerberos keytab, so it could not use another flavor anyway, and a
// mount with no flavor given makes the kernel probe the server's list,
// asking for the RPCSEC_GSS module (rpc-auth-6) once for each Kerberos
// flavor the server offers — a helper started and failing each time,
// 0.3 s of a booting node's mounts under emulation. An nfs line with vers=2 or 3 stays
// nfs (the server then needs rpcbind and mountd; beo's own NFS server,
// pkg/nfs, speaks NFSv4 only). A line whose SOURCE is $MASTER:/PATH (or
// the master's address) asks the master to export PATH: rw unless the
// line says ro (Entry.Export); pkg/nfs serves those.
//
// Mount.Mirror marks a mount of the master's PATH at the same PATH on the
// node: what the node sees there is the master's own tree, so bpslave
// takes programs and libraries under it from the mount instead of being
// sent them (pkg/slave); files elsewhere stay cached by content.
//
// # Diagnostics
//
// Problems are config.Diag values, file:line like the config's. Errors:
// a file that is not text, a line with a control character, fewer than
// three or more than six fields, an unknown $VARIABLE, a relative or
// ".."-climbing TARGET, a malformed TYPE, an NFS SOURCE that is not
// HOST:/PATH or whose HOST is a name, DUMP or PASS not a number, an empty
// option, and a mount over one of the node's own file systems: its root
// (/, a tmpfs) and what its init mounts before the fstab is read (/proc,
// /sys, /sys/fs/cgroup, /dev, /dev/pts, /dev/shm, /run; pkg/pid1), or
// over a directory above one (/sys/fs), which would hide what the node
// runs on. A line naming one of those with the type the node mounts
// there (none /proc proc, $RAMDISK / tmpfs, none /dev devtmpfs) finds it
// mounted and does nothing, so it is allowed, as the example's are.
// Warnings: a TARGET mounted by an earlier line too (the later mount
// hides it), a SOURCE — an NFS export or a device, path, LABEL= or UUID=,
// not a bind mount — mounted by an earlier line too, $RAMDISK with a
// disk file system type, and a TYPE that is neither a common one
// (KnownType) nor one Options.KnownType knows (the master's
// /proc/filesystems and module tree, for `beo config check`): the node's
// kernel may still have it as a module, but a typo (bogusfs) or a FUSE
// helper's type (fuse.sshfs, with no helper on a node) fails to mount.
// A line with an error stays in the Table as a bad Entry: the master
// does not mount it and, unless it says nonfatal, makes the node error.
//
// Load reads files through config.ReadFile: only a regular file (after
// symlinks) of at most config.MaxFileSize (16 MiB) bytes; a FIFO, a
// device or a larger file is refused with an error naming it.
package fstab
