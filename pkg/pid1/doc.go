// Package pid1 is beoclient, the compute node's init: the beo binary runs
// it as PID 1 from the initrd that package initramfs builds. It brings the
// node from a bare kernel to a running bpslave, then supervises the
// node's daemons, reaps orphans and carries out power actions.
//
// # Boot sequence
//
// Stage 1, in the initrd (recognised by /init existing):
//
//  1. mount /proc, /sys, /dev (devtmpfs: Debian's kernel does not mount
//     it), /dev/pts, /dev/shm, /run;
//  2. log to /dev/kmsg (see Logging), read /proc/cmdline;
//  3. load every module of the initrd's modules.dep, dependencies first,
//     with u-root's kmodule (finit_module); a module that fails is logged;
//  4. mount the node root: a tmpfs of rootfs_size= at /newroot, holding
//     a copy of /bin (the binary and its applet links);
//  5. switch_root (u-root's mount.SwitchRoot): move /dev /proc /sys /run
//     into it, make it /, delete the initrd's files — freeing their RAM —
//     and exec /bin/beo, which is PID 1 again and runs stage 2.
//
// Stage 2, in the node root:
//
//  6. DHCP on every interface that shows a link, in parallel (u-root's
//     dhclient: nclient4 + netlink), option 60 = "beoclient"; each lease
//     is applied (address, routes, resolv.conf, host name) as it comes,
//     and boot goes on with the first. UROOT_NOHWRNG=1 keeps the client's
//     transaction IDs from waiting on the kernel's RNG;
//  7. start the Early services (beoklogd: log forwarding, so boot
//     messages — already in the kernel log — reach the master's node.N);
//  8. fetch http://MASTER:beo.http/beo.rootfs into memory (retried for
//     up to 5 minutes) and unpack it into / — refusing members that would
//     leave the root, even through links, or replace /bin/beo;
//  9. start the other services (bpslave -m MASTER:beo.bproc -keys
//     /etc/beowulf/keys -root /, sendstats, kickbackproxy) and log
//     ReadyMarker ("node ready");
//  10. supervise: a service that exits is restarted after 0.5 s, doubling
//     to 30 s while it keeps failing.
//
// Stage 1 switches root before the network comes up, rather than after
// the rootfs is fetched, so the initrd is freed whole (nothing started
// from it keeps its binary mapped) and log forwarding starts in the final
// root, where its /dev/log is the node's.
//
// Which services run is data (Config.Services, DefaultServices): the
// beoclient applet keeps those the binary's dispatch table has, so adding
// a daemon is one line there. A service's arguments are built from the
// kernel command line.
//
// An error that leaves the node useless (no lease on any interface, no
// rootfs) ends Boot; the applet then calls Fatal, which logs it, waits
// FatalDelay and reboots: a diskless node retries from the network.
//
// # Kernel command line
//
// Parsed by pkg/bootparam (the contract with the boot server). beoclient
// reads:
//
//	beo.master=IP        bpmaster's and the rootfs server's address;
//	                     without it, the DHCP server (option 54)
//	beo.bproc=PORT       bpslave's -m port (933)
//	beo.http=PORT        the rootfs server's port (80)
//	beo.rootfs=PATH      the rootfs archive's URL path (/boot/rootfs.cpio)
//	rootfs_size=SIZE     cap of the node's RAM root, tmpfs size=: bytes
//	                     with k/m/g, or a percentage of RAM (50%); a
//	                     malformed value is logged and 50% used
//	console=…            the kernel's; init's stdio is /dev/console, so
//	                     its messages and the services' output go there
//
// and leaves to the services, which read /proc/cmdline themselves:
// syslog_server=IP[:PORT] and legacy_syslog=1 (beoklogd), beo.stats=
// (sendstats), beo.kickback= (kickbackproxy). Words the kernel passes to
// init as arguments are ignored.
//
// # Processes and signals
//
// One Reaper waits for every child (a wait4(-1) anywhere else would steal
// statuses from exec.Cmd.Wait): on SIGCHLD it reaps all exited children
// and hands each status to whoever started that pid; orphans are counted
// and dropped. Services run in their own process group with stdin
// /dev/null and the console as stdout/stderr.
//
// A Go program ends on SIGTERM, SIGINT or SIGHUP, and the kernel panics
// when PID 1 ends: init logs and ignores them. SIGUSR1 halts and SIGUSR2
// powers off (busybox init's convention).
//
// # Power
//
// bpctl -R/-H/-P reach bpslave, which (started without -sim) syncs and
// calls reboot(2) itself — RESTART, HALT or POWER_OFF, at once: a
// diskless node holds nothing worth a slower shutdown. Power does the
// same for init's own uses (signals, Fatal).
//
// # Logging
//
// Init's log records (log/slog text, no time stamp) go to /dev/kmsg as
// "beoclient: …" at level info — so they travel with the kernel's to the
// master once beoklogd runs — and to the console directly only when its
// log level would hide them (quiet). Init turns off the kernel's /dev/kmsg
// rate limit (printk_devkmsg=on) and ends each record with a newline (the
// kernel shows no reader an unterminated record until the next arrives).
package pid1
