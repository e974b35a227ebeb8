package slave

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Cache stores program files by the sha256 of their content. A node keeps
// what it was sent, so a second run of a program transfers nothing.
//
// The slave needs only these three operations; pkg/filecache can stand in
// for DirCache through Config.Cache once it offers them.
type Cache interface {
	// Has reports whether content with this hash is stored.
	Has(hash string) bool
	// Add stores exactly size bytes read from r under hash, and fails —
	// storing nothing — unless they hash to it.
	Add(hash string, size int64, r io.Reader) error
	// Path names the file holding hash's content once Has(hash).
	Path(hash string) string
}

// DirCache is a Cache in one directory: a file per hash, named by it.
type DirCache struct{ dir string }

// NewDirCache opens (creating if needed) a cache in dir.
func NewDirCache(dir string) (*DirCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("file cache: %w", err)
	}
	return &DirCache{dir: dir}, nil
}

// Has implements Cache.
func (c *DirCache) Has(hash string) bool {
	if !validHash(hash) {
		return false
	}
	fi, err := os.Stat(c.Path(hash))
	return err == nil && fi.Mode().IsRegular()
}

// Path implements Cache.
func (c *DirCache) Path(hash string) string { return filepath.Join(c.dir, hash) }

// Add implements Cache. The content lands under a temporary name and is
// renamed into place only once verified, so a reader never sees a partial
// object.
func (c *DirCache) Add(hash string, size int64, r io.Reader) error {
	if !validHash(hash) {
		return fmt.Errorf("file cache: bad hash %q", hash)
	}
	if size < 0 {
		return fmt.Errorf("file cache: %s: bad size %d", hash, size)
	}
	f, err := os.CreateTemp(c.dir, ".tmp-"+hash[:16]+"-")
	if err != nil {
		return fmt.Errorf("file cache: %w", err)
	}
	defer os.Remove(f.Name()) // after the rename this removes nothing
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("content ended after %d of %d bytes", n, size)
	}
	if err == nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != hash {
			err = fmt.Errorf("content hashes to %s", got)
		}
	}
	if err == nil {
		err = f.Chmod(0o755)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.Path(hash))
	}
	if err != nil {
		return fmt.Errorf("file cache: %s: %w", hash, err)
	}
	return nil
}

// validHash accepts a lowercase hex sha256: nothing that could name
// another file.
func validHash(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// placer puts a program's files at their paths under the node's root.
//
// A regular file is a hard link to its cache object when they share a
// filesystem (a diskless node's root lives in RAM: a copy would hold every
// library twice) and a copy otherwise. Either way it lands under a
// temporary name and is renamed over the old one, so a running program
// keeps its old inode and a starting one sees a whole file. Placement is
// skipped when the path already holds exactly that content (same inode as
// the object, or the copy made earlier and unchanged since). Placements
// are serialized: they are quick, and the object's mode may change.
//
// The price of linking: whoever may write the path writes the object.
// Placed files are owned by the slave (root on a real node) and never
// writable by others.
type placer struct {
	root  string
	cache Cache

	mu     sync.Mutex
	copies map[string]copied // path → the copy placed there
	placed map[string]copied // path → what place last left there (hash or link target)
}

// copied identifies a file the placer copied into place.
type copied struct {
	hash     string
	dev, ino uint64
	size     int64
	mtime    int64
	mode     fs.FileMode
}

func identify(hash string, fi fs.FileInfo) copied {
	c := copied{hash: hash, size: fi.Size(), mtime: fi.ModTime().UnixNano(), mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		c.dev, c.ino = uint64(st.Dev), st.Ino
	}
	return c
}

// path maps an absolute path on the master to the node's view of it.
// Cleaning it as an absolute path first keeps ".." from leaving root.
func rooted(root, p string) string {
	return filepath.Join(root, filepath.Clean("/"+p))
}

// place puts every file of a closure in place: regular files first, then
// symlinks. A symlink whose path is already a directory is left alone —
// the files below it were placed at their own paths — so a closure naming
// both /lib64 → usr/lib64 and /lib64/ld-linux-x86-64.so.2 works whatever
// the node had there, and a link never points into a directory that does
// not exist yet while files are placed through it.
func (pl *placer) place(files []fileRef) error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for _, links := range []bool{false, true} {
		for _, f := range files {
			if (f.Target != "") != links {
				continue
			}
			dst := rooted(pl.root, f.Path)
			want := f.Hash
			if links {
				want = "->" + f.Target
			}
			if pl.unchanged(dst, want) {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return fmt.Errorf("place %s: %w", f.Path, err)
			}
			var err error
			if links {
				err = pl.symlink(dst, f.Target)
			} else {
				err = pl.file(dst, f)
			}
			if err != nil {
				return fmt.Errorf("place %s: %w", f.Path, err)
			}
			pl.remember(dst, want)
		}
	}
	return nil
}

// unchanged reports whether dst is, by one lstat, still exactly what place
// last left there for want (a hash, or "->" and a link target): same
// inode, type, mode, size and mtime. The next run of a program then costs
// one system call per file of its closure instead of three (the
// directory, the cache object, the file); anything replaced, chmodded or
// written since takes the full path again.
func (pl *placer) unchanged(dst, want string) bool {
	prev, ok := pl.placed[dst]
	if !ok || prev.hash != want {
		return false
	}
	fi, err := os.Lstat(dst)
	return err == nil && identify(want, fi) == prev
}

// remember records what dst now is, for unchanged.
func (pl *placer) remember(dst, want string) {
	fi, err := os.Lstat(dst)
	if err != nil {
		delete(pl.placed, dst)
		return
	}
	if pl.placed == nil {
		pl.placed = map[string]copied{}
	}
	pl.placed[dst] = identify(want, fi)
}

func (pl *placer) symlink(dst, target string) error {
	fi, err := os.Lstat(dst)
	if err == nil && fi.IsDir() {
		return nil
	}
	if t, err := os.Readlink(dst); err == nil && t == target {
		return nil
	}
	tmp := tempName(dst)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func (pl *placer) file(dst string, f fileRef) error {
	obj := pl.cache.Path(f.Hash)
	ofi, err := os.Stat(obj)
	if err != nil {
		return err
	}
	mode := f.mode()
	if fi, err := os.Lstat(dst); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == mode {
		if os.SameFile(fi, ofi) || pl.copies[dst] == identify(f.Hash, fi) {
			return nil
		}
	}
	tmp := tempName(dst)
	linked := false
	if ofi.Mode().Perm() != mode && linkCount(ofi) == 1 {
		// Not linked anywhere yet: give the object the mode it is wanted with.
		if os.Chmod(obj, mode) == nil {
			ofi, _ = os.Stat(obj)
		}
	}
	if ofi != nil && ofi.Mode().Perm() == mode && os.Link(obj, tmp) == nil {
		linked = true
	} else if err := copyFile(tmp, obj, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	if linked {
		delete(pl.copies, dst)
	} else if fi, err := os.Lstat(dst); err == nil {
		pl.copies[dst] = identify(f.Hash, fi)
	}
	return nil
}

func linkCount(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 0
}

// copyFile writes a copy of src at dst (a new name) with mode.
func copyFile(dst, src string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Chmod(mode)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}

// tempName is a fresh hidden name next to p.
func tempName(p string) string {
	var b [6]byte
	rand.Read(b[:])
	return filepath.Join(filepath.Dir(p), ".beo-"+filepath.Base(p)+"-"+hex.EncodeToString(b[:]))
}

// fileRef is a wire.FileRef that passed checks.
type fileRef struct {
	Path, Hash, Target string
	Mode               uint32
}

// mode is the permission a placed file gets: the master's, never set-id.
func (f fileRef) mode() fs.FileMode {
	if m := fs.FileMode(f.Mode) & 0o777; m != 0 {
		return m
	}
	return 0o755
}

// checkRef validates one closure entry.
func checkRef(path, hash, target string) error {
	switch {
	case !strings.HasPrefix(path, "/"):
		return fmt.Errorf("closure file %q: not an absolute path", path)
	case target == "" && !validHash(hash):
		return fmt.Errorf("closure file %s: bad hash %q", path, hash)
	}
	return nil
}
