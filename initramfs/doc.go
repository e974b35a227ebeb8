// Package initramfs builds a compute node's boot package from the running
// beo binary, so the head node needs no Go toolchain and every node runs
// exactly the master's build (bpmaster refuses any other).
//
// # The package
//
// A directory, /var/beowulf/boot by default, that the boot server serves
// as http://MASTER:PORT/boot/<name>:
//
//	kernel         a copy of the chosen kernel image (default: the running
//	               kernel, /boot/vmlinuz-$(uname -r))
//	initrd         newc cpio (gzip'd with Options.Gzip; off by default, see below)
//	rootfs.cpio    newc cpio, fetched and unpacked by the node's init
//	manifest.json  format, kernel release, the inputs' hash, each file's
//	               SHA-256 and the modules carried (see Manifest)
//
// The initrd holds what the node needs before it has a network:
//
//	/bin/beo                  the binary (must be static: an ELF with an
//	                          interpreter is refused)
//	/bin/<applet> → beo       one symlink per applet of the dispatch table
//	/init → bin/beo           the kernel runs it; main.go sees the name
//	                          "init" (or PID 1) and runs beoclient
//	/dev/console, /dev/null   so init has stdio before devtmpfs is mounted
//	/lib/modules/<release>/   DefaultModules() plus the config's bootmodule
//	                          lines with every dependency (resolved from the
//	                          kernel's modules.dep), .ko.xz/.zst/.gz
//	                          decompressed, and a modules.dep naming only them
//	/proc /sys /run /tmp /etc /newroot   mount points
//
// The rootfs holds what the node gets over the network, unpacked into its
// RAM root (see pkg/pid1):
//
//	/etc/passwd, group, hosts, nsswitch.conf, os-release   basics
//	/etc/beowulf/keys/node.key (0600), master.pub          the node
//	                          credential of pkg/link's trust model, for
//	                          `bpslave -keys /etc/beowulf/keys`
//	/tmp /var/tmp (1777), /root (0700), /home, /var/cache
//	prestaged libraries       each `libraries` line and bplib entry at its
//	                          own path: a file, or the shared objects
//	                          (names with ".so") directly in a directory;
//	                          symbolic links on the way (/lib → usr/lib,
//	                          libc.so.6 → …) are carried as links
//
// The credential travels in the rootfs, not the initrd, because only the
// rootfs is fetched by the node's own init over the private cluster
// network; either way a host on that network can read it, which is the
// trust ClusterWare places in its private network (pkg/link).
//
// # Reproducible, and rebuilt only on change
//
// Members are written in path order ("." first, each directory before its
// contents, parents made explicitly with mode 0755 — u-root's
// WriteRecordsAndDirs would invent them as 0777), owned by root, mtime 0,
// inode numbers counted from 1; gzip output carries no name or time. The
// same inputs give the same bytes.
//
// Ensure, which `beo master` calls at start and beoboot calls without -f,
// builds the archives as a stream into SHA-256 first: with the kernel's
// bytes and the format number that is the package's input hash. If
// manifest.json records the same hash and every file still has its
// recorded SHA-256, nothing is written. Otherwise each file is written
// to a temporary file in the directory, fsynced and renamed over the old
// one, the manifest last, so a node fetching during a rebuild gets a
// whole old or a whole new file (a boot that straddles the rebuild may
// get an old kernel with a new initrd; it happens only when the master
// starts with a new binary or kernel).
//
// # Libraries used, and why
//
// u-root's pkg/cpio writes the archives: it writes device numbers (the
// kernel needs /dev/console as 5,1; cavaliergopher/cpio writes 0,0) and
// its Normalize/MakeReproducible give stable names and headers. u-root's
// pkg/kmodule decompresses modules. The module closure is computed here
// (kmodule resolves dependencies only on the running system, and we
// build for the node's kernel).
//
// # Measured (TCG, 2 shared cores; test/e2e TestDirectBoot)
//
// The initrd is about 21 MB uncompressed (16 MB binary + 27 modules); the
// kernel unpacks it in ≈0.16 s. Loading the 27 modules takes 0.65–1 s
// under TCG. -gzip (level 1) shrinks the initrd to 11.6 MB for a PXE
// fetch at the price of decompression in the guest kernel; its effect on
// boot time under TCG is not measured yet, so it is off by default.
// Ensure on an unchanged package takes ≈ 0.2 s (hashing ≈ 50 MB).
package initramfs
