// Package pid1 is beoclient, the compute node's init: the beo binary runs
// it as PID 1 from the initrd that package initramfs builds. It brings the
// node from a bare kernel to a running bpslave, then supervises the
// node's daemons, reaps orphans and carries out power actions. The paths
// it shares with the builder are pkg/nodefs's; it does not import the
// builder.
//
// # Boot sequence
//
// Stage 1, in the initrd (recognised by /init existing):
//
//  1. mount /proc, /sys, cgroup2 at /sys/fs/cgroup (the jobs' groups),
//     /dev (devtmpfs: Debian's kernel does not mount it), /dev/pts,
//     /dev/shm, /run;
//  2. log to /dev/kmsg (see Logging), read /proc/cmdline; start the
//     kernel's entropy collection in the background (see Randomness);
//  3. coldplug: load, with u-root's kmodule (finit_module), the modules
//     whose modules.alias pattern matches a present device's modalias
//     (/sys/bus/BUS/devices/*/modalias), round after round while new
//     devices appear — on a virtio machine the NIC's chain, not all the
//     initrd's modules; a module that fails is logged (an initrd without
//     modules.alias: every module, as before);
//  4. set every NIC up, so carrier and switch port come up while init
//     goes on;
//  5. copy the modules not loaded yet to /run (LaterModules); mount the
//     node root: a tmpfs of rootfs_size= at /newroot, holding a copy of
//     /bin (the binary and its applet links);
//  6. switch_root (u-root's mount.SwitchRoot): move /dev /proc /sys /run
//     into it, make it /, delete the initrd's files — freeing their RAM —
//     and exec /beo/bin/beo, which is PID 1 again and runs stage 2.
//
// Stage 2, in the node root:
//
//  7. DHCP on every NIC, in parallel (insomniacslk's nclient4; address,
//     routes, resolv.conf and host name applied with u-root's dhclient),
//     option 60 = "beoclient", as soon as the driver reports a carrier —
//     not when the kernel's link watcher, rate-limited to once a second,
//     calls the link operational — retrying every 0.5 s; boot goes on
//     with the first lease;
//  8. start the Early services (beoklogd: log forwarding, so boot
//     messages — already in the kernel log — reach the master's node.N);
//  9. fetch http://MASTER:beo.http/beo.rootfs into memory (retried for
//     up to 5 minutes) and unpack it into / — refusing members that would
//     leave the root, even through links, or replace /beo/bin/beo;
//  10. start the other services (bpslave -m MASTER:beo.bproc -keys
//     /etc/beowulf/keys -root /, sendstats, kickbackproxy) and log
//     ReadyMarker ("node ready"); every service but bpslave runs at nice
//     HelperNice, so bpslave gets the CPU first while it connects;
//  11. load the modules left in /run in the background, from one thread
//     at nice 19, then delete them (see loadRest) — except the file
//     systems' (the NFS client, ext4: onDemand), which stay there until
//     the node's fstab asks: bpslave loads what a mount needs at once
//     (LoadModules), and init starts on them at the very beginning of
//     stage 2 when the kernel command line names them (beo.modules=,
//     which the boot server writes from the node's fstab), so they load
//     while the node gets its lease and rootfs and connects (preload);
//  12. supervise: a service that exits is restarted after 0.5 s, doubling
//     to 30 s while it keeps failing. When bpslave exits — killed,
//     crashed, restarted — init first kills every job it started: they
//     all live in nodefs.JobsCgroup (`bpslave -cgroup`, one group per
//     job), which init kills at once with cgroup.kill (KillJobs), so no
//     job outlives its bpslave (pkg/slave orphans.go).
//
// Stage 1 switches root before the network comes up, rather than after
// the rootfs is fetched, so the initrd is freed whole (nothing started
// from it keeps its binary mapped) and log forwarding starts in the final
// root, where its /dev/log is the node's.
//
// # Boot time
//
// Measured under TCG (bench/boot-timeline, medians): /init to bpslave
// connected went from 3.8 s to 1.7 s for one node. The steps above that
// bought it: coldplug instead of every module (27 modules took 0.65–1 s),
// scanning only the buses the aliases name (every sysfs lookup is slow
// under emulation); DHCP without waiting for the CRNG (1 s) or for the
// link watcher (0.4–0.8 s); helpers at nice 10. What is left is mostly
// CPU: every start of the 12 MB Go binary (stage 1, stage 2, four
// services) costs 0.2–0.35 s under emulation, and stage 1's copy of it
// into the node root 0.1–0.3 s.
//
// A node whose fstab has NFS lines pays for the NFS client's modules
// (8 of them, 5.3 MB): under TCG with -icount shift=2 (250 million
// instructions a second, deterministic) they took 8.3 s to load as
// Debian ships them, 0.42 s as the boot image carries them (unsigned,
// their trace eval maps and ftrace entries renamed: initramfs
// modprep.go); a node without such lines no longer loads them at all.
// Loading ahead (preload) wins little under emulation, where the boot
// leaves the CPU almost never idle: measured, it had loaded the two
// smallest by the time bpslave connected.
//
// # Randomness
//
// Before the kernel's CRNG is ready — at once on CPUs with RDRAND, about
// a second later (one bit per timer tick) on QEMU's default TCG CPU —
// getrandom(2) blocks, and so does a read of /dev/urandom (Linux ≥ 5.18
// first gathers jitter entropy there). The DHCP library draws
// transaction IDs from u-root's uio/rand, which reads /dev/urandom: init
// points that reader at getrandom(GRND_INSECURE), because an xid pairs
// replies with requests and protects nothing. bpslave's TLS does need
// the CRNG, so init starts the kernel's collection from a background
// thread at nice 19 first thing in each stage: the second passes while
// modules load and the root switches (see warmEntropy).
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
