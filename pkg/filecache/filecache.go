// Package filecache is a compute node's store of program files, addressed
// by content. bpsh sends a node the files a program needs (the closure
// from pkg/elfdeps) named by their SHA-256; the node keeps each one once,
// whatever its path or however many programs use it, so the second run
// of a program — or of another program linked against the same libc —
// sends no file bytes at all.
//
// # On the node
//
// A Cache is a directory: Open(dir). The node asks Has(hash) for each file
// of a closure and the master sends only the missing ones, which Put
// stores. Put writes to a temporary file in the same directory, hashing as
// it writes; content that does not match its name is refused (ErrMismatch)
// and nothing is kept. A good file is made read-only, fsynced and linked
// into place under its final name in one step, so a file under its final
// name is always whole and correct, after a crash too, and any number of
// Puts of the same content may race: the first one in wins, the others
// find it there.
//
// Link then makes a cached file appear at a path of the node's file
// system — a hard link (same inode, no copy) when the cache and the
// destination share a file system, else an atomic copy — and Symlink
// recreates the closure's symbolic links. Both replace what was at the
// destination by rename, so a running program never sees a half-made
// file. Mode belongs to an inode, so one stored file serves one mode: the
// first Link of a file gives it its mode, and a Link with another mode
// gets its own copy (stored as <hash>.<mode>, reused after). Because
// linked files share the cache's inode, replace them (rename), never write
// into them: `cp` onto a linked path would change the cached content.
//
// Layout of dir: <hash> (64 lowercase hex digits) for each stored file,
// <hash>.<mode> (four octal digits) for mode copies, and .put-* / .mode-*
// temporary files while a write is under way.
//
// The cache lives in the node's RAM file system and is cleared when the
// node reboots, so it has no size cap and no eviction: a node holds the
// files of the programs run on it since boot. Temporary files left by a
// crash of the node daemon are not cleaned up (the reboot does that).
// Cache methods are safe for concurrent use by the goroutines of one
// process; Put is also safe across processes.
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
	mu  sync.Mutex // serializes Link's choice and creation of a mode's inode
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

// checkHash validates a hash before it is used as a file name.
func checkHash(hash string) error {
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
	if checkHash(hash) != nil {
		return false
	}
	_, err := os.Lstat(filepath.Join(c.dir, hash))
	return err == nil
}

// Path returns the stored file with this hash, or an error wrapping
// fs.ErrNotExist if there is none. The file is read-only; read it, link
// to it, never write it.
func (c *Cache) Path(hash string) (string, error) {
	if err := checkHash(hash); err != nil {
		return "", fmt.Errorf("filecache: %w", err)
	}
	p := filepath.Join(c.dir, hash)
	if _, err := os.Lstat(p); err != nil {
		return "", fmt.Errorf("filecache: %w", err)
	}
	return p, nil
}

// Put stores the content read from r under hash and returns its path. If
// the content is stored already, Put returns at once without reading r.
// If r's content does not hash to hash, the error wraps ErrMismatch and
// nothing is stored.
func (c *Cache) Put(hash string, r io.Reader) (string, error) {
	if err := checkHash(hash); err != nil {
		return "", fmt.Errorf("filecache: put: %w", err)
	}
	final := filepath.Join(c.dir, hash)
	if _, err := os.Lstat(final); err == nil {
		return final, nil
	}
	if err := c.put(hash, final, r); err != nil {
		return "", fmt.Errorf("filecache: put %s: %w", hash, err)
	}
	return final, nil
}

func (c *Cache) put(hash, final string, r io.Reader) error {
	tmp, err := os.CreateTemp(c.dir, ".put-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the link, or on failure
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(tmp, h), r)
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
	if err := publish(tmp.Name(), final); err != nil {
		return err
	}
	return syncDir(c.dir)
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

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
