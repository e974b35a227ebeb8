// Package filecache is a compute node's store of program files, addressed
// by content. bpsh sends a node the files a program needs (the closure
// from pkg/elfdeps) named by their SHA-256; the node keeps each one once,
// whatever its path or however many programs use it, so the second run
// of a program — or of another program linked against the same libc —
// sends no file bytes at all. The master names the files (Hash, Hasher,
// Sum); bpslave stores and places them (Cache). This package owns both
// sides of that name, and is the node's only store: bpslave keeps no
// other.
//
// # On the node
//
// A Cache is a directory: Open(dir). The node asks Has(hash) for each file
// of a closure and the master sends only the missing ones, which Put
// stores. Put writes to a temporary file in the same directory, hashing as
// it writes; content that does not match its name is refused (ErrMismatch)
// and nothing is kept. A good file is made read-only, fsynced and linked
// into place under its final name in one step, so a file under its final
// name is always whole and correct, and any number of Puts of the same
// content may race: the first one in wins, the others find it there (a
// rename would replace an inode that placed files may already share).
// Put always consumes its size bytes, so the stream it reads from (the
// master's, carrying the next file after them) stays in step.
//
// Place then makes a closure appear at its paths: each regular file by
// Link — a hard link to the cached inode (a diskless node's root lives
// in RAM: a copy would hold every library twice) when the cache and the
// destination share a file system, else a copy — then each symbolic
// link by Symlink. Files go first, and a link whose path is already a
// directory is left alone (the files below it were placed at their own
// paths). No placement follows a symbolic link on its way (PlaceUnder):
// the paths are the master's real ones, each link on the way to them
// travelling as a link of its own, and a directory a user may write on
// the node — their /tmp/u, which they could make a link to /etc — must
// not lead root's files anywhere else; a path through a link is an
// error. Both replace what was at the destination by rename, so a
// running program keeps its old inode and a starting one sees a whole
// file. Mode belongs to an inode, so one stored file serves one mode: the
// first Link of a file gives it its mode, and a Link with another mode
// gets its own copy (stored as <hash>.<mode>, reused after). Because
// linked files share the cache's inode, replace them (rename), never write
// into them: whoever may write a placed path writes the cached content.
// bpslave places files owned by itself (root on a real node) and never
// writable by others.
//
// Placing is what every exec pays, so the Cache remembers what it left
// at each path (inode, type, mode, size, mtime): a path still exactly
// that costs one lstat on the next run, instead of three (the directory,
// the cached file, the destination). Anything replaced, chmodded or
// written since takes the full path again. Placements are serialized:
// they are quick, and a cached file's mode may change.
//
// Layout of dir: <hash> (64 lowercase hex digits) for each stored file,
// <hash>.<mode> (four octal digits) for mode copies, and .put-* / .mode-*
// temporary files while a write is under way.
//
// The cache lives in the node's RAM file system and is cleared when the
// node reboots, so it has no size cap and no eviction: a node holds the
// files of the programs run on it since boot. For the same reason a Put
// does not fsync the directory: a name that a crash loses is a file the
// master sends again, and a name that survives is whole. Temporary files
// left by a crash of the node daemon are not cleaned up (the reboot does
// that). Cache methods are safe for concurrent use by the goroutines of
// one process; Put is also safe across processes.
//
// # Why the store is here
//
// bpslave had its own store beside this one, used in production while
// this one was not: the same layout, with a rename where Put links, a
// copy per path where Link keeps one copy per mode, and the placement
// memory above. They are one now, with the slave's behaviour where it
// was measured (the one-lstat warm path, leaving a directory where a
// link is wanted) and this package's where the slave's was weaker (the
// first Put wins; a mode's copy is shared by every path wanting it).
//
// # On the master
//
// Hash(path) is the SHA-256 of a file, as hex. A Hasher remembers the hash
// of each file by (device, inode) together with its size, mtime and ctime,
// so bpsh does not re-read libc on every run; any change of those makes
// it hash again. ctime is in the key because a rewrite can restore size
// and mtime (touch -r, tar, rsync -t) but not ctime. A file changed less
// than a second before it is hashed is not remembered, since a second
// change within the file system's timestamp granularity could go
// unnoticed (git's "racy clean" problem).
package filecache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// ErrMismatch is the error Put returns (wrapped) when the content it read
// does not have the hash it was told.
var ErrMismatch = errors.New("content does not match its hash")

// ErrBadHash is returned for a hash that is not 64 lowercase hex digits.
var ErrBadHash = errors.New("not a SHA-256 hex digest")

// Cache is a content-addressed file store in one directory.
type Cache struct {
	dir string

	mu     sync.Mutex           // serializes placing: Link's choice and creation of a mode's inode
	placed map[string]placement // path → what Link or Symlink last left there
}

// Open opens the cache in dir, creating the directory if needed.
func Open(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("filecache: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("filecache: %w", err)
	}
	return &Cache{dir: abs}, nil
}

// Dir is the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// CheckHash validates a hash before it is used as a file name: 64
// lowercase hex digits, nothing that could name another file. The error
// wraps ErrBadHash.
func CheckHash(hash string) error {
	if len(hash) != 2*sha256.Size {
		return fmt.Errorf("%q: %w", hash, ErrBadHash)
	}
	for i := 0; i < len(hash); i++ {
		if c := hash[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("%q: %w", hash, ErrBadHash)
		}
	}
	return nil
}

// Has reports whether the content with this hash is stored.
func (c *Cache) Has(hash string) bool {
	if CheckHash(hash) != nil {
		return false
	}
	fi, err := os.Lstat(filepath.Join(c.dir, hash))
	return err == nil && fi.Mode().IsRegular()
}

// Path returns the stored file with this hash, or an error wrapping
// fs.ErrNotExist if there is none. The file is read-only; read it, link
// to it, never write it.
func (c *Cache) Path(hash string) (string, error) {
	if err := CheckHash(hash); err != nil {
		return "", fmt.Errorf("filecache: %w", err)
	}
	p := filepath.Join(c.dir, hash)
	if _, err := os.Lstat(p); err != nil {
		return "", fmt.Errorf("filecache: %w", err)
	}
	return p, nil
}

// Put stores the next size bytes read from r under hash. If their
// content does not hash to hash, the error wraps ErrMismatch and nothing
// is stored; if r ends before size bytes, nothing is stored either. It
// never reads past size bytes, and reads all of them even when the
// content is stored already, so r may carry more after them.
func (c *Cache) Put(hash string, size int64, r io.Reader) error {
	if err := CheckHash(hash); err != nil {
		return fmt.Errorf("filecache: put: %w", err)
	}
	if size < 0 {
		return fmt.Errorf("filecache: put %s: bad size %d", hash, size)
	}
	final := filepath.Join(c.dir, hash)
	var err error
	if c.Has(hash) {
		err = discard(r, size)
	} else {
		err = c.put(hash, final, size, r)
	}
	if err != nil {
		return fmt.Errorf("filecache: put %s: %w", hash, err)
	}
	return nil
}

// discard reads size bytes of content already stored.
func discard(r io.Reader, size int64) error {
	n, err := io.CopyN(io.Discard, r, size)
	if err == io.EOF {
		err = fmt.Errorf("content ended after %d of %d bytes", n, size)
	}
	return err
}

func (c *Cache) put(hash, final string, size int64, r io.Reader) error {
	tmp, err := os.CreateTemp(c.dir, ".put-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the link, or on failure
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("content ended after %d of %d bytes", n, size)
	}
	if err == nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != hash {
			err = fmt.Errorf("%w: got %s", ErrMismatch, got)
		}
	}
	if err == nil {
		err = tmp.Chmod(0o444)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return publish(tmp.Name(), final)
}

// publish gives the complete file tmp its final name without replacing a
// file already there: a racing Put of the same content keeps the first
// inode, which Links may already share. The caller removes tmp.
func publish(tmp, final string) error {
	err := os.Link(tmp, final)
	switch {
	case err == nil, errors.Is(err, fs.ErrExist):
		return nil
	case linkUnsupported(err):
		return os.Rename(tmp, final) // a file system without hard links
	}
	return err
}
