// Package config reads and edits /etc/beowulf/config, the file that
// describes a beo cluster: how many compute nodes it has and their
// addresses, which MAC is which node, what each node boots, which other
// devices share the cluster network, and the daemons' ports.
//
// Parse (or Load) turns the file into a Config: typed values plus a
// diagnostic for every problem, each tied to its file:line. File edits the
// file the way the boot server must at run time (boot-stage rewrites,
// auto-assigned nodes) without disturbing anything an admin wrote.
//
// # Grammar
//
// The file is UTF-8 text, read line by line. '#' starts a comment that
// runs to the end of the line, wherever it appears; blank lines are
// ignored; tokens are separated by spaces or tabs (a '\r' ending a line is
// a space too, so CRLF files read fine). No line may hold another control
// character or a non-printable rune (a no-break space, a byte-order mark):
// what the admin sees must be what beo reads. Directive names are lower
// case. Each line is one directive:
//
//	nodes N                           node numbers are 0…N-1
//	iprange FROM TO                   node N's address is FROM+N, at most TO
//	node [N] [CLASS] [SEQ STAGE] [MAC…]
//	ignore MAC…                       MACs the boot server never answers
//	hostrange FROM TO                 addresses for host devices (repeatable)
//	host MAC [IP] [NAME…]             a device that is not a node: switch, PDU…
//	class NAME kernelimage PATH|none
//	class NAME initrdimage PATH|none
//	class NAME kernelcommandline ARGS…|none
//	kernelimage [NODES] PATH|none
//	initrdimage [NODES] PATH|none
//	kernelcommandline [NODES] ARGS…|none
//	nodename PATTERN [OFFSET] [GROUP]
//	interface NAME                    the cluster network interface (repeatable)
//	server NAME PORT                  a daemon's port, see Ports below
//	pingtimeout SECONDS               1–86400, default 60
//	libraries PATH…                   libraries assumed cached on nodes
//	bootmodule NAME…                  kernel modules for the node's initrd
//	nodeassign append|insert|off      what a new MAC becomes (locked = off)
//	ipforward [yes|no]                route the cluster network out (see below)
//	mkfs never|if_error|always        when nodes' local filesystems are made
//	fsck never|safe|full              how they are checked before mounting
//	masterorder NODES|- MASTER_IP…    the nodes' masters, primary first (see below)
//
// Addresses are IPv4 (the nodes boot over DHCPv4). MACs are 6-byte
// Ethernet addresses in any form net.ParseMAC accepts, in any case.
// libraries and bootmodule lines accumulate; interface lines too, a name
// listed twice drawing a warning. A single-valued setting (nodes, iprange,
// pingtimeout, nodeassign, ipforward, mkfs, fsck, a server port, a default or class
// boot setting) given twice draws a warning and the later line wins.
//
// # Nodes
//
// A node line gives the node number N (below MaxNodes); a line without one
// takes the previous node line's number plus one, the first 0. A numbered
// line without MACs reserves the number (an empty slot); an unnumbered
// line needs a MAC. A node may have several MACs (one per NIC). CLASS must
// be defined by a class line anywhere in the file (classes are read
// first). SEQ, the boot-sequence, is pxe, local or pxe+local; STAGE, the
// boot-stage, is pxe or local and decides how the boot server answers the
// node's PXE request: pxe = kernel, initrd and command line; local = "boot
// next" (the local disk). After answering a pxe+local node at stage pxe,
// the boot server rewrites the line to stage local (NodeSpec.AfterPXE,
// File.SetBootStage); an admin sets it back to pxe to reprovision. A node
// line without SEQ STAGE is pxe pxe. A stage that is not a step of its
// sequence (pxe local) draws a warning.
//
// A node's address is the iprange start plus its number. Numbers at or
// above `nodes N`, and numbers whose address would pass the iprange end,
// are errors. NodeCount is `nodes N` capped at the iprange size (the
// iprange size alone without nodes). nodeassign decides the number a new
// MAC gets (Config.NextNode): append = one above the highest configured,
// insert = the lowest free, off = none, the MAC stays unknown (the boot
// server records it in /var/beowulf/unknown_addresses). When no number
// below NodeCount is left the MAC is ignored: the boot server appends an
// `ignore MAC` line, as Scyld's did once a cluster reached its node count
// ("new nodes will be classified as ignored"), so the admin sees in the
// file every machine that asked; it stays ignored after `nodes` grows
// until that line is deleted. A MAC may appear on only one node, ignore or
// host line; Lookup says which.
//
// # Host devices
//
// host MAC [IP] [NAME…]: if the token after the MAC parses as an address
// it is the device's address, which must lie in a hostrange. Otherwise
// (the chapter's `host 00:A0:D1:E9:87:CA smartswitch`) the device gets an
// address from the hostranges: hosts without one are served in file order,
// each the lowest address of the first hostrange (in file order) that no
// host line names explicitly and that is no master's. Adding such a line
// in the middle of the file shifts the automatic addresses after it, so
// give switches and PDUs explicit addresses when they matter.
// Hostranges must not overlap each other or the iprange, and no range may
// contain one of the master's addresses (Options.Masters).
//
// # Boot settings and their precedence
//
// kernelimage, initrdimage and kernelcommandline without NODES set the
// default; with NODES (a number 15, a range 10-20, or a comma list 1,3,10-20)
// they set those nodes. For kernelcommandline the first token is NODES
// only when shaped like one; the command line is the rest of the line,
// joined by single spaces, at most MaxCmdline bytes (the kernel keeps
// 2047 and the boot server appends its own parameters). A value of
// `none` means "do not provide one",
// which differs from unset (no line at all: the boot server's own
// choice, beoboot's output). A node's effective setting (NodeSpec) is, from
// weakest to strongest: the default, its class, then every NODES line that
// includes it in file order, the later line winning. Setting.Level and
// Setting.Line say where a value came from.
//
// # Names
//
// nodename PATTERN [OFFSET] [GROUP] gives every node an extra name:
// PATTERN with %N replaced by the node number (`nodename n%N` → n4). The
// name's address is the node's address plus OFFSET, written IPv4-style
// (0.0.1.0 = 256) or as a number, 0 when absent; GROUP puts the names in
// that netgroup. With two arguments the second is an OFFSET when it parses
// as one, else a GROUP: `nodename n%N-ipmi 0.0.1.0 ipmi` names 10.54.1.104
// n4-ipmi in netgroup ipmi when node 4 is 10.54.0.104.
//
// # Ports
//
// server NAME PORT overrides a default port. `server tcp` is the
// deprecated name of beofs2 (accepted with a warning); an unknown NAME
// draws a warning.
//
//	NAME      default  used by
//	bproc     933      bpmaster, TCP: bpslave connections
//	beostats  5545     recvstats, UDP: sendstats reports
//	kickback  3045     kickback daemon: name service for nodes
//	syslog    514      log receiver, UDP: beoklogd messages
//	beofs2    932      nothing in beo (see below; alias: tcp)
//	http      80       boot server HTTP: kernel, initrd, rootfs for iPXE
//
// beofs2 was the TCP port of Scyld's beoserv file service, which sent
// booting nodes their kernel, command line and final boot RAM disk. In beo
// those travel over the boot server's HTTP port (`server http`, for iPXE
// and for the node's init fetching its rootfs) and TFTP (the iPXE binary
// for firmware PXE); program files reach nodes over the bproc connection.
// So `server beofs2 PORT` (and `server tcp PORT`) is accepted, so a Scyld
// config loads unchanged, and recorded (Ports.BeoFS2), but no beo daemon
// listens on that port and moving it changes nothing: move the boot files
// with `server http`.
//
// # IP forwarding
//
// `ipforward` (or `ipforward yes`; `ipforward no` is the default, as is no
// line) lets the cluster network reach the outside through the master, as
// Scyld's did: `beo master` turns on net.ipv4.ip_forward and installs an
// nftables table of its own (pkg/nat) that masquerades the cluster's
// traffic leaving by any other interface and refuses connections into the
// cluster network from outside (outbound only: nothing outside can reach
// a node); and the boot server's DHCP answers carry the master's cluster
// address as router (option 3) and the master's DNS servers (option 6,
// from its /etc/resolv.conf), from which the node's init sets its default
// route and writes /etc/resolv.conf. Without it nothing is forwarded and
// DHCP names no router. The setting is read when `beo master` starts; a
// reload that changes it is logged and takes effect at the next start.
//
// # Local disks
//
// A node's local disks are partitioned by beofdisk (pkg/fdisk,
// /etc/beowulf/fdisk), and /etc/beowulf/fstab maps partitions to swap
// and mount points. Before a node mounts a local ext2/3/4 partition or
// swaps on one — as it boots, in its mount step, or with `beofdisk -s`
// once it is up — mkfs and fsck decide what is done to it first
// (pkg/localfs does it, on the node, with the master's own mke2fs,
// e2fsck and mkswap run through the process space, as Scyld's setup_fs
// did); a failure is a failed mount of that fstab line (the node goes
// error unless the line says nonfatal):
//
//	mkfs never      (default) never make one: a partition without a
//	                filesystem (or swap signature) is an error
//	mkfs if_error   make one when the partition has none, or when fsck
//	                finds errors it cannot repair (if_needed is a synonym)
//	mkfs always     make one at every setup: nothing on it survives a
//	                reboot, for scratch space only
//	fsck never      mount without checking
//	fsck safe       (default) e2fsck -p: repairs only what is safe
//	                unattended; fast on a clean filesystem
//	fsck full       e2fsck -f -y: a forced full check, every repair made
//
// A partition already mounted (or swapped on) is left as it is. Swap is
// never checked; mkfs decides when mkswap runs.
//
// # Multiple masters
//
// Several masters (Scyld allowed four; beo sets no limit) may share one
// cluster network, as Scyld's did: each runs `beo master` with the same config
// (one shared file, or identical copies) and the same key directory
// (/etc/beowulf/keys: the cluster's master key, which the nodes' boot
// image trusts, and the node pins, which each master reads at every
// check, so one renewed by another counts), and the same users and
// groups. `masterorder NODES MASTER_IP…` (NODES a node spec as above, or
// `-` for every node) lists those nodes' masters in order; the first line
// that covers a node wins (a later overlapping line draws a warning). A
// node no line covers has one master, whichever answers it; a master
// that is not among a node's masters never answers it or accepts it.
// `masterorder 0-19 10.1.1.1` and `masterorder 20-39 10.1.1.2` split
// the nodes between two masters (static partitioning); `masterorder -
// 10.1.1.1 10.1.1.2` makes 10.1.1.1 every node's primary and 10.1.1.2
// the one that takes over (active-passive); `masterorder 0-19 10.1.1.1
// 10.1.1.2` with `masterorder 20-39 10.1.1.2 10.1.1.1` does both
// (active-active). What follows (pkg/boot masters.go, pkg/slave
// masters.go, pkg/master):
//
//   - A node's boot is answered by its first master that is up: a later
//     master answers only while its bpmaster port finds every earlier one
//     down. The answer's kernel command line names all of the node's
//     masters (beo.masters=).
//   - The node connects to each of its masters. The one that booted it
//     is its primary: there it is up, runs jobs, takes bpctl. Every
//     other master shows it "[up]" and can neither run on it nor control
//     it: the master refuses (controlled by another master), and so does
//     the node, which obeys only its primary. Its stats go to every one
//     of them (sendstats), so each one's beostat shows it.
//   - A node whose primary has been unreachable for two ping intervals
//     (pingtimeout: what that master takes to call it down) while
//     another of its masters is connected reboots — Scyld's cold
//     re-parenting — and boots from, and becomes a node of, the first of
//     its masters that is up. Its jobs end with the session they ran
//     under, as at any master loss. A master that restarts within that
//     time keeps its nodes.
//   - `bpctl -S NODES -R` on the new primary, once the first master is
//     back, sends nodes home the same way.
//
// Each master keeps its own node logs and state, and runs its own NFS
// server for the nodes it is primary of ($MASTER in an fstab is the
// master that booted the node). The master that answers a new MAC adds
// it to the config (nodeassign); with copies rather than one shared
// file, list every node's MAC instead, so the copies stay the same.
//
// # Diagnostics
//
// Every problem is a Diag, printed "file:line: message", of Warning or
// Error severity: an error for what makes the master or a node fail, a
// warning for what is suspicious but workable. Warnings: unknown
// directives (never silently ignored, never fatal: a real Scyld config
// carries directives beo does not implement), deprecated or unknown
// server names, repeated settings (a nodename line repeated exactly
// too), relative paths, nodes exceeding the iprange, a kernelimage,
// initrdimage, kernelcommandline or masterorder line whose NODES hold no
// node below NodeCount, an ignore line's MAC no NIC can have, a host
// name nN that bpsh reads as node N (without a nodename line giving it),
// a loopback range (127.0.0.0/8: `beo sim` runs a simulated cluster on
// one; an error when a master address is known and is not loopback),
// and, when Options.Networks does not say the network, a range holding
// an x.x.x.0 or x.x.x.255 address (the network or broadcast address of
// a /24; fine in a wider network). With Options.Stat, a kernelimage or
// initrdimage file missing on the master (or not a regular file) is a
// warning too: it may be put there before a node boots.
//
// Ports: the master binds every daemon's port at once (server NAME
// PORT, or its default), plus the boot server's DHCP (UDP 67) and TFTP
// (UDP 69) and the beostatus dashboard (TCP 5546), which beo master's
// flags move, so two of them on one port of one protocol — `server
// http 933`, bproc's default — is an error on the later server line,
// naming both. One involving beofs2 (no beo daemon binds it) or the
// NFS server of the fstab's exports (TCP 2049, running only when an
// fstab mounts from the master) is a warning.
//
// Addresses no node or host device can have make a range an error:
// unspecified (0.0.0.0/8), link-local (169.254.0.0/16), multicast
// (224.0.0.0/4), reserved (240.0.0.0/4) and the broadcast address
// 255.255.255.255; so do the network and broadcast addresses of a
// cluster network Options.Networks gives (not for a /31 or /32). MACs
// no NIC has — the zero address, the broadcast address and multicast
// addresses (first octet odd) — are errors on node and host lines.
//
// Names: the master publishes every name in /etc/hosts (pkg/nss), where
// a lookup takes the first line holding the name, so one name at two
// addresses is an error: a host name given to two addresses, a host
// name that a nodename line gives a node below NodeCount (n3 with
// nodename n%N), a host named master, and one nodename PATTERN at two
// offsets. With Options.Module, a bootmodule name the nodes' kernel
// lacks (not in the module tree's modules.dep nor built in) is an
// error: the boot image build would fail on it.
//
// Reading: Load, Open and Save read through ReadFile, which reads only
// a regular file (after following symlinks) of at most MaxFileSize
// (16 MiB) bytes: a device such as /dev/zero, a FIFO, a socket, a
// directory or a larger file is refused with an error naming the file,
// and the open never blocks.
//
// A file that describes no cluster is an error, because loading it would
// drop every node: a file that is not text (a NUL byte or invalid UTF-8:
// one error on the first such line, and nothing in the file is read), one
// without a directive (empty, or only comments; the error is on line 1),
// one without an iprange (no node would have an address) and one of
// `nodes 0`. A line holding a control character or non-printable rune is
// an error too, and is left out. Other errors: malformed MACs,
// addresses, numbers (node -1 is a bad node number) and ports, missing
// or extra arguments, unknown
// classes, bad boot-sequence or stage, duplicate MACs (naming both lines)
// and node numbers, node numbers or addresses out of range, overlapping
// ranges, ranges holding a master address, host addresses outside every
// hostrange, masterorder masters inside a node or host range, and the
// errors above. A line with a malformed or duplicate item, a MAC no NIC
// can have or an unknown class is left out of the Config; a line
// breaking a whole-file rule (numbers, ranges, ports, names, host
// addresses) stays in. Parse returns the Config either way,
// with a *DiagError when any error exists.
//
// # Editing
//
// File keeps the original bytes. SetBootStage replaces only the stage token
// of one node line; AppendNode and AppendIgnore add a line at the end
// (first ending an unterminated last line). Every other byte — comments,
// blank lines, spacing, a missing final newline — stays as it was, and
// the Config is re-parsed after each edit; an edit that would add an error
// is refused. Save writes atomically: a temporary file in the same
// directory receives the bytes and the original's permission bits, is
// fsynced and renamed over the file (over a symlink's target), then the
// directory is fsynced, so readers and crashes see the old file or the
// new one. Save refuses (*ModifiedError) when the file changed on disk
// since it was read, rather than overwrite an admin's edit.
//
// # Default
//
// With no config file the master uses DefaultText (see Default): cluster
// interface beo0, the master at 10.99.0.1, 64 nodes at 10.99.0.100–163,
// host devices at 10.99.0.200–249, names n%N, pingtimeout 60, nodeassign
// append, and no boot files named.
package config
