// Package elfdeps finds every file the kernel and the dynamic loader will
// open to start a program: the program, its ELF interpreter and the
// transitive closure of its DT_NEEDED libraries, found the way glibc's
// ld.so finds them. bpsh uses it on the master to know what to send to a
// node before `bpsh 3 prog` can run there; the node keeps what it receives
// in pkg/filecache, keyed by content hash, so the next run sends nothing.
//
// # What a closure is
//
// Closure(root, path, opts) returns one File per name the program's loader
// opens, program first, then the interpreter, then libraries in the
// breadth-first order ld.so loads them (the order `ldd` prints). A File's
// Path is the name exactly as the loader forms it on the node — the same
// absolute path as on the master, e.g. /lib/x86_64-linux-gnu/libc.so.6 from
// ld.so.cache or /lib64/ld-linux-x86-64.so.2 from PT_INTERP — so these
// names match ldd's. Real is Path with every symlink resolved, directory
// links included (merged-/usr systems have /lib -> usr/lib), and Links
// lists the symlinks passed on the way, each with its target verbatim. The
// node recreates it as: the bytes at Real, then each link. Because Real's
// directories and every link's directory are resolved paths on the master,
// no entry ever needs to be created through another entry's link. Where a
// node already has a real directory where the master has a link (its own
// /lib, say), the link cannot be made; the node should then put the bytes
// at Path as well. Bytes are read on the master from filepath.Join(root,
// Real).
//
// root is the filesystem the program lives in: "/" in production, a fake
// sysroot in tests. Every path in a File is in root's view (no root
// prefix); absolute symlink targets are resolved inside root and ".."
// never climbs above it.
//
// # How a library is found
//
// For each DT_NEEDED name of an object (after expanding $ORIGIN, $LIB and
// $PLATFORM, in the $NAME and ${NAME} forms), in order:
//
//  1. A loaded object whose name, requested name or DT_SONAME equals it is
//     used again (libc's NEEDED ld-linux-x86-64.so.2 is the interpreter).
//  2. A name with a slash is a path (relative to Options.Dir).
//  3. Otherwise the directories are searched, first match wins:
//     DT_RPATH of the needing object, then of the object that loaded it,
//     and on up to the program — but only if the needing object has no
//     DT_RUNPATH, and an object's DT_RPATH counts only if it has no
//     DT_RUNPATH itself; then the program's own DT_RPATH (same rule); then
//     Options.LibraryPath (LD_LIBRARY_PATH, ':' or ';' separated, $ORIGIN
//     being the program's); then the needing object's DT_RUNPATH (never
//     inherited); then /etc/ld.so.cache; then the default directories.
//     DF_1_NODEFLIB on the needing object skips cache hits in the default
//     directories and the default directories themselves.
//
// A candidate of the wrong ELF class or machine is skipped, as ld.so does
// on multilib systems; a candidate that is not ELF at all, or of the wrong
// byte order, or neither ET_DYN nor ET_EXEC, is an error, as it is for
// ld.so. A file found under a second name (same device and inode) is the
// same object, but its second name is still a File: ld.so opens that name
// before it notices. Empty and relative entries in a search path are
// relative to Options.Dir, the directory the program will run in.
//
// The default directories depend on the program's class and machine and
// cover both Debian-style multiarch and Fedora-style lib64 layouts, in
// this order for x86-64: /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu,
// /lib64, /usr/lib64, /lib, /usr/lib. A directory that does not apply only
// costs a failed stat. $LIB is lib/<multiarch triplet> where root has that
// directory (Debian's ld.so), else lib64 or lib; $PLATFORM is what the
// kernel reports as AT_PLATFORM (x86_64, i686, aarch64). Options override
// all three.
//
// $ORIGIN is the directory of the object's path as the loader opened it,
// except for the program, whose $ORIGIN is the directory of its resolved
// path (ld.so reads /proc/self/exe).
//
// # ld.so.cache
//
// The cache is the glibc "glibc-ld.so.cache1.1" format (ParseCache), alone
// or after the old "ld.so-1.7.0" table. All numbers are in the byte order
// the header's flags give (little-endian when unset):
//
//	offset size
//	0      17   magic "glibc-ld.so.cache"
//	17     3    version "1.1"
//	20     4    nlibs
//	24     4    length of the string table
//	28     1    flags: bits 0-1 = 0 unset, 1 invalid, 2 little, 3 big endian
//	29     3    unused
//	32     4    extension directory offset (hwcaps names, generator)
//	36     12   unused
//	48     24×n entries: flags int32, key uint32, value uint32,
//	            osversion uint32, hwcap uint64
//
// key and value are offsets of NUL-terminated strings (library name,
// path), counted from the start of the new-format header. Entries are
// sorted by _dl_cache_libcmp (digits compare as numbers) in descending
// order, and lookups bisect them exactly as ld.so does. An entry is used
// only if its flags are 1 or this architecture's (x86-64: 0x0303,
// libc6,x86-64) and its hwcap is 0: entries for glibc-hwcaps
// subdirectories (x86-64-v3…) and legacy hwcap directories are ignored,
// and so are those directories when searching paths, because the node's
// CPU may differ from the master's; the baseline library runs on both. A
// cache whose header is damaged is an error (run ldconfig), not silently
// ignored as ld.so would.
//
// # Scripts and static programs
//
// A file starting with "#!" gets the script itself plus its interpreter's
// closure, parsed as Linux does (first line, at most 256 bytes, one
// optional argument, up to 4 nested interpreters). For `#!/usr/bin/env
// NAME` with Options.Path set, NAME's closure is added as well. An ELF
// file without PT_INTERP (static, or static-pie) is just itself. A
// program that is neither (a shell script without "#!") gets itself and
// /bin/sh's closure: the kernel refuses to run it, and execvp(3) and
// shells run it with /bin/sh, as the one who starts it must too
// (IsProgram, Shell).
//
// # Not done
//
// Setuid restrictions on $ORIGIN and LD_LIBRARY_PATH, LD_PRELOAD and
// /etc/ld.so.preload, DT_AUXILIARY/DT_FILTER, dlopen'ed modules (nss,
// gconv, plugins: invisible to any static walk), and the legacy tls/ and
// x86_64/ subdirectories that glibc before 2.37 also searched.
package elfdeps
