package filecache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"
)

// Hash returns the SHA-256 of the file at path, in lowercase hex: the name
// the cache stores it under.
func Hash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("filecache: %w", err)
	}
	defer f.Close()
	sum, err := hashReader(f)
	if err != nil {
		return "", fmt.Errorf("filecache: hash %s: %w", path, err)
	}
	return sum, nil
}

// Sum returns the name content b is stored under: its SHA-256, in
// lowercase hex, as Hash gives for a file holding b.
func Sum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func hashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Hasher computes Hash and remembers the result per file; see the package
// doc for when it hashes again. The zero value is ready to use and safe
// for concurrent use.
type Hasher struct {
	// Now is the clock, for the racy-file rule; nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	memo   map[fileKey]stamped // one entry per file: bounded by the files hashed
	hits   uint64
	misses uint64
}

type fileKey struct{ dev, ino uint64 }

// stamp is what must be unchanged for a remembered hash to hold.
type stamp struct {
	size         int64
	mtime, ctime int64 // ns since the epoch
}

type stamped struct {
	stamp
	hash string
}

// racyWindow: a file changed this recently is not remembered.
const racyWindow = time.Second

// Hash returns the SHA-256 of the file at path like the package's Hash,
// reading the file only if it changed since this Hasher last hashed it.
func (h *Hasher) Hash(path string) (string, error) {
	f, err := openPlain(path)
	if err != nil {
		return "", fmt.Errorf("filecache: %w", err)
	}
	defer f.Close()
	key, before, err := identify(f)
	if err != nil {
		return "", fmt.Errorf("filecache: hash %s: %w", path, err)
	}

	h.mu.Lock()
	if e, ok := h.memo[key]; ok && e.stamp == before {
		h.hits++
		h.mu.Unlock()
		return e.hash, nil
	}
	h.misses++
	h.mu.Unlock()

	sum, err := hashReader(f)
	if err != nil {
		return "", fmt.Errorf("filecache: hash %s: %w", path, err)
	}
	_, after, err := identify(f)
	if err != nil {
		return "", fmt.Errorf("filecache: hash %s: %w", path, err)
	}
	if after != before {
		return "", fmt.Errorf("filecache: hash %s: file changed while being read", path)
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	if now().Sub(time.Unix(0, max(before.mtime, before.ctime))) < racyWindow {
		return sum, nil
	}
	h.mu.Lock()
	if h.memo == nil {
		h.memo = map[fileKey]stamped{}
	}
	h.memo[key] = stamped{before, sum}
	h.mu.Unlock()
	return sum, nil
}

// openPlain opens path read-only without the runtime's poller: a blocking
// descriptor wrapped by os.NewFile. os.Open would try to register the
// file with the poller, four system calls more, and a Hasher mostly just
// stats what it opens (the master hashes a program's closure for every
// exec).
func openPlain(path string) (*os.File, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == nil {
			return os.NewFile(uintptr(fd), path), nil
		}
		if err != syscall.EINTR {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
	}
}

// Stats reports how many Hash calls were answered from memory (hits) and
// how many read the file (misses).
func (h *Hasher) Stats() (hits, misses uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits, h.misses
}

// identify stats an open regular file.
func identify(f *os.File) (fileKey, stamp, error) {
	fi, err := f.Stat()
	if err != nil {
		return fileKey{}, stamp{}, err
	}
	if !fi.Mode().IsRegular() {
		return fileKey{}, stamp{}, fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileKey{}, stamp{}, errors.New("no inode information")
	}
	return fileKey{uint64(st.Dev), st.Ino}, stamp{
		size:  fi.Size(),
		mtime: st.Mtim.Nano(),
		ctime: st.Ctim.Nano(),
	}, nil
}
