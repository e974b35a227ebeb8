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
//	initrd         newc cpio, lz4-compressed by default (Options.Compression, see below)
//	rootfs.cpio    newc cpio, fetched and unpacked by the node's init
//	manifest.json  format, kernel release, the inputs' hash, each file's
//	               SHA-256 and the modules carried (see Manifest)
//
// The initrd holds what the node needs before it has a network:
//
//	/beo/bin/beo              the binary (must be static: an ELF with an
//	                          interpreter is refused), in a directory of
//	                          its own (pkg/nodefs)
//	/beo/bin/<applet> → beo   one symlink per applet of the dispatch table
//	/init → beo/bin/beo       the kernel runs it; main.go sees the name
//	                          "init" (or PID 1) and runs beoclient
//	/dev/console, /dev/null   so init has stdio before devtmpfs is mounted
//	/lib/modules/<release>/   DefaultModules() plus the config's bootmodule
//	                          lines with every dependency (resolved from the
//	                          kernel's modules.dep), .ko.xz/.zst/.gz
//	                          decompressed, and a modules.dep and a
//	                          modules.alias naming only them (the node
//	                          loads at boot what its devices ask for);
//	                          the file systems' modules (NFS, ext4)
//	                          without their signature and with their
//	                          trace eval maps renamed, for a fast load
//	                          (modprep.go; as shipped where the kernel
//	                          refuses unsigned modules)
//	/proc /sys /run /tmp /etc /newroot   mount points
//
// The rootfs holds what the node gets over the network, unpacked into its
// RAM root (see pkg/pid1):
//
//	/bin, /sbin, /lib, /lib64…  the master's top-level layout: usrmerge's
//	                          links (/bin → usr/bin) where the master has
//	                          them, else directories; /usr/bin, /usr/sbin
//	/etc/passwd, group, hosts, nsswitch.conf, os-release   basics
//	/etc/beowulf/keys/master.pub  the master's public key; bpslave makes
//	                          the node's own key beside it at boot
//	                          (pkg/link's trust model)
//	/tmp /var/tmp (1777), /root (0700), /home, /var/cache
//	prestaged libraries       each `libraries` line and bplib entry at its
//	                          own path: a file, or the shared objects
//	                          (names with ".so") directly in a directory;
//	                          symbolic links on the way (/lib → usr/lib,
//	                          libc.so.6 → …) are carried as links
//
// Nothing in either archive is secret: a host on the cluster network can
// fetch both, and neither holds a private key (pkg/link, pkg/master
// "Node identity").
//
// # Reproducible, and rebuilt only on change
//
// Members are written in path order ("." first, each directory before its
// contents, parents made explicitly with mode 0755 — u-root's
// WriteRecordsAndDirs would invent them as 0777), owned by root, mtime 0,
// inode numbers counted from 1; compressed output carries no name or
// time and is written by one goroutine. The
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
// pkg/kmodule decompresses modules. The module closure is computed by
// pkg/modindex from the module tree's own index (kmodule resolves
// dependencies only on the running system, and we build for the node's
// kernel); modindex also writes the initrd's index, which the node reads
// back with it.
//
// # Compression (measured: bench/boot-timeline)
//
// The initrd is 16.8 MB uncompressed (the 12.5 MB stripped binary and 27
// modules). iPXE fetches it after the kernel, and the node's kernel
// unpacks it before /init runs, so a compression trades transfer time
// for decompression in the guest. Medians of 5 one-node PXE boots under
// TCG, each the same archive compressed by the reference tools (fetch:
// kernel and initrd, from the server's log; unpack: the guest kernel's
// own timestamps):
//
//	             size     fetch   unpack   sum
//	none       16.8 MB   0.69 s   0.13 s   0.82 s
//	gzip -1     6.7 MB   0.39 s   0.43 s   0.82 s
//	lz4 -l -9   7.1 MB   0.22 s   0.17 s   0.39 s
//	zstd -19    5.0 MB   0.30 s   0.36 s   0.66 s
//
// lz4 is the default (Options.Compression, beoboot -compress): the kernel
// decompresses it almost as fast as it copies an uncompressed archive.
// It is written with pierrec/lz4 in the legacy frame format the kernel
// reads, at HC level 1: 7.6 MB, and a rebuild (beoboot -f) takes about
// 1.1 s instead of 0.2 s uncompressed (level 9 is 0.3 % smaller and 2.7
// times slower; the fast level 1 MB bigger); zstd with
// klauspost/compress. The node's kernel needs the matching CONFIG_RD_*
// (Debian's has all four).
package initramfs
