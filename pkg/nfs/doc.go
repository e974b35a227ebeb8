// Package nfs is beo master's NFS side: it exports what the cluster's
// fstab files ask of the master, through a real NFS server, and hands
// each node its resolved fstab lines.
//
// # The export model
//
// Every NFS line of /etc/beowulf/fstab and fstab.N whose source is
// $MASTER:/PATH (or the master's address) makes PATH an Export: PATH on
// the master, seen by NFSv4 clients at the same pseudo path (so a node
// mounts MASTER:PATH), read-write when any such line lacks ro, for the
// cluster's node range (the config's iprange as the fewest CIDR
// prefixes, Prefixes — rather than the netgroup cluster, which each
// server would resolve through its own NSS setup), root squashed to
// 65534:65534, AUTH_SYS. A PATH that is not a directory on the master,
// and "/", are not exported (Servable): the log says so once, and the
// node.N of every node whose lines need it. Nothing else is exported;
// without an fstab nothing is, and no server is started.
//
// # Two servers
//
// The model is rendered for one of two real servers, chosen by Detect
// (beo master -nfs auto|kernel|ganesha|none):
//
//   - the kernel's nfsd, where the head node's kernel has it (/proc/fs/nfsd,
//     or nfsd in /proc/filesystems) and exportfs is installed (Debian
//     nfs-kernel-server, whose daemons must run): beo writes an exports(5)
//     file of its own, /etc/exports.d/beo.exports, atomically, and applies
//     it with `exportfs -ra`; other exports are left alone. The file is
//     removed (and exportfs run) when beo master stops.
//   - nfs-ganesha otherwise (Debian nfs-ganesha nfs-ganesha-vfs, the VFS
//     FSAL), which beo master starts as its child once there is something
//     to export — `ganesha.nfsd -F -L LOG -f CONF -p PIDFILE`, with
//     config, log, pid file and NFSv4 recovery state in a run directory
//     (beside bpmaster's socket: /run/beowulf/nfs) — bound to the
//     master's cluster address, reloaded with SIGHUP when the exports
//     change (Export_Id stays the same for a path), restarted if it
//     exits, and stopped when beo master stops (SIGTERM; the kernel sends
//     it too if beo master dies). It serves NFSv4 only (Protocols = 4:
//     no rpcbind, NLM, rquota or UDP), with Only_Numeric_Owners (nodes
//     run no idmapper: names would show as 4294967294) and Graceless (no
//     90 s grace period after a start). Measured with ganesha 4.3 in a
//     network namespace: it answers 0.1 s after it starts; AUTH_SYS
//     permissions and root squash behave as the kernel server's.
//
// This matters on machines whose kernel has neither nfsd nor an NFS
// client (the CI hosts of this project): there only ganesha can serve,
// and only the nodes' kernels mount. When no server can run, beo master
// says so once in its log, and each node whose fstab needs one gets a
// line in node.N; the mounts then fail like any other (nonfatal or not).
// A Go NFS server library was not an option: those that exist (go-nfs)
// act as root for every caller, which /home cannot allow.
//
// # Mounts
//
// Service.Mounts is master.Config.Mounts: node N's file (fstab.N, else
// fstab; re-read at each connect, so an edit applies at the node's next
// boot) resolved for N (pkg/fstab), with notes for node.N. A path the
// server has not seen triggers a Reload, so a new fstab.N line needs no
// SIGHUP; removing a line unexports only at the next SIGHUP.
package nfs
