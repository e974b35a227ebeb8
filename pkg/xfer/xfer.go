// Package xfer moves files as tar streams, whole or not at all: the bpcp
// transfer format, used by the bpcp client and bpmaster on the master
// (bpmaster packs local sources for a copy to a node) and by bpslave on
// the nodes (it packs for a copy from the node and lands a copy to it),
// each under the caller's own credentials. It is the one tar writer and
// reader of a copy: every hop packs with Scan (Plan.Write, or Plan.Add
// and Append to merge sources into one stream) and lands with Unpack.
//
// # The stream
//
// A transfer is a POSIX tar archive (archive/tar: USTAR, PAX when a name or
// a number does not fit) ending with the end-of-archive marker. Entries are
// regular files, directories (with their trailing "/") and symbolic links,
// named relative to the parent of the source the user named:
//
//	Pack("a/b.txt")        b.txt
//	Pack("dir"), -r        dir/  dir/x  dir/sub/  dir/sub/y  dir/link -> x
//
// Every directory comes before what it holds. Mode, mtime (whole seconds),
// uid and gid are always recorded; whether they are applied is the
// receiver's choice (Options.Preserve).
//
// Pack follows a symbolic link named as a source (as cp and rcp do) and
// stores the links it meets inside a tree as links. Devices, fifos and
// sockets inside a tree are skipped; named as a source they are an error.
// A directory source needs Options.Recursive ("dir: is a directory (use
// -r)"). Scan walks every source before a byte is written and checks that
// each file can be opened and each directory read, so the common failures
// (a typo, a missing -r, an unreadable file) are reported before the
// receiver sees anything; Plan.Write then streams. A failure while
// streaming (a file vanishing) ends the stream without the end-of-archive
// marker, which every reader here treats as a failed transfer. A file
// that became something else meanwhile (a fifo) is such a failure, never
// waited on: bpmaster packs files for users.
//
// # Landing
//
// Unpack reads a stream into dst the way cp places its sources:
//
//   - dst is an existing directory: every entry lands inside it
//     (dst/b.txt, dst/dir/…).
//   - otherwise the stream must hold exactly one regular file, or with
//     Recursive one top-level directory, which becomes dst itself (the
//     directory is created). Several top-level entries are refused with
//     "dst: not a directory". A dst written with a trailing slash must end
//     up a directory. A dst that is a symbolic link to an existing file is
//     followed, as cp does.
//
// The stream lands in two phases. Staging: every regular file and link is
// written to a temporary name (".beo-NAME-RANDOM") in its target directory,
// a file's data fsynced (its writeback started every 8 MiB as it arrives,
// so the fsync waits for little) and its mode, owner and times set there.
// Where the filesystem allows (O_TMPFILE: tmpfs, ext4, xfs, btrfs; not
// NFS) a file's data arrives in a file without a name, which gets its
// temporary name only once whole and fsynced: a receiver killed mid-file
// (SIGKILL, where no rollback runs) leaves nothing, the kernel frees it;
// directories are created as they come (mode 0700 while they fill; 0755,
// left as is, for parents the archive does not list). Commit,
// only after the end-of-archive marker was read: each temporary is renamed
// over its target in archive order, then the directories get their final
// mode and times. Any failure before the commit (a short stream, a write
// error, a refused name) removes every temporary and every directory
// Unpack created, leaving dst exactly as it was; a failure during the
// commit leaves the files renamed so far, each of them whole. An old file
// is never truncated or partly overwritten by a cut transfer.
//
// What is already at a file's target is treated as cp treats it:
//
//   - a regular file must be writable by the caller (a read-only file is
//     "permission denied", not replaced), and the file that replaces it
//     keeps its mode, and its owner and group where the writer may give
//     them (root), unless Preserve says otherwise. One being executed
//     (ETXTBSY) is replaced, as install(1) does, so a new version of a
//     running program can be copied out.
//   - a file with other hard links, or one the caller may write in a
//     directory they may not (no temporary can be made there), is written
//     in place, so the links and the directory stay as they are: its data
//     waits whole in a file without a name in the temporary directory
//     (os.TempDir) and is written into the target at the commit. A cut
//     transfer leaves it untouched; a write that fails at the commit (a
//     full disk) leaves it partly written, as it would cp.
//   - a device is written into as the data arrives and is never replaced
//     (bpcp x /dev/null must not delete /dev/null); Preserve leaves its
//     mode, owner and times alone. A fifo or a socket is refused, never
//     replaced: a fifo's reader that never reads would hold the writer —
//     a node's thread — for ever.
//
// Without Preserve a file's mode is the archive's masked by 0777 (no umask
// is applied: cp -p's mode minus set-id bits), its mtime is now, its owner
// whoever writes it, and an existing directory keeps its mode. With
// Preserve, mode (set-id and sticky bits included) and mtime are applied to
// files and directories, and owner and group as far as the kernel allows
// the writer, as cp -p does: both for root, else the group if the writer
// is in it, else neither, silently.
//
// # Safety
//
// The archive is untrusted. An entry name that is absolute, contains a
// ".." element, cleans to nothing, or is longer than PATH_MAX (4096) or
// deeper than 256 directories is refused. Every file operation goes
// through an os.Root opened at dst (or, when dst is created as a
// directory, at dst itself after creating it in its parent), so no symbolic
// link — old or delivered by the archive — can lead a write out of dst:
// a link escaping the root is an error ("path escapes from parent"), and
// the final component of a target is replaced by rename, never written
// through. Hard links and unknown entry types are refused; devices and
// fifos in an archive are skipped, as Pack skips them; GNU sparse files
// are refused. FuzzUnpack checks that no input panics or touches anything
// outside dst.
package xfer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Options choose how a transfer is packed and landed; bpcp's -r and -p.
type Options struct {
	Recursive bool // directories (and their trees) are allowed
	Preserve  bool // apply mode, mtime, and as root uid/gid, from the archive
}

// ErrTruncated reports a stream that ended without the end-of-archive
// marker: the sender failed or the connection was cut.
var ErrTruncated = errors.New("archive truncated (the sender failed or the connection was cut)")

// blockSize is the tar record unit.
const blockSize = 512

// bulkBuffer is the copy buffer for file contents. Every write into a
// pipe or a yamux stream is one hand-off to another goroutine (a frame,
// for yamux), so io.Copy's 32 KiB cost a hand-off per 32 KiB on every
// hop of a bpcp.
const bulkBuffer = 1 << 20

// copyBulk copies src to dst through a bulkBuffer. dst's ReadFrom, if it
// has one, is bypassed: *os.File's falls back to 32 KiB reads for a
// source that is not a file or socket.
func copyBulk(dst io.Writer, src io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, bulkBuffer))
}

// bare strips the operation and path an os error carries, so messages can
// name the file once, the way the user named it: "/tmp/x: permission
// denied" rather than "/tmp/x: open x: permission denied". The result still
// matches errors.Is(err, fs.ErrNotExist) and friends.
func bare(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}

// named prefixes err with the file it concerns.
func named(name string, err error) error {
	return fmt.Errorf("%s: %w", name, bare(err))
}
