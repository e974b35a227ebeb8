package master

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/beo-cluster/beo/pkg/filecache"
)

// bulkBuffer is the copy buffer for bulk data the master relays or sends
// (program files, bpcp streams). Each Write on a yamux stream is one frame
// (up to the stream's window) and one hand-off to the session's writer, so
// io.Copy's 32 KiB made a frame — and a separate TLS record for its
// 12-byte header — every 32 KiB.
const bulkBuffer = 1 << 20

// sendChunk is the largest write of program files to a node session.
// yamux's session writer keeps a buffer as big as the largest frame it
// ever sent, for the session's life: a thousand cold nodes sent libc in
// one write each would keep a thousand 2 MiB buffers. (A bpcp relays
// through bulkBuffer: one session per copy.)
const sendChunk = 32 << 10

// Blob cache bounds: files up to blobMax bytes are kept, blobBudget bytes
// in all.
const (
	blobMax    = 8 << 20
	blobBudget = 64 << 20
)

// blobs keeps the content of the program files the master sends most,
// by content hash: when a thousand cold nodes need libc at once, it is
// read and checked once and then written from memory to each. Content
// that does not hash to its name is never kept (the file changed since it
// was hashed: the send fails, as it would have at the node). Entries go
// in first-in, first-out order once the budget is spent.
type blobs struct {
	mu    sync.Mutex
	m     map[string]*blob
	order []string
	size  int64
}

type blob struct {
	once sync.Once
	b    []byte // nil: too big to keep
	err  error
	kept bool // counted in the budget; c.mu guards it
}

// get returns the content with hash read from path, and false when the
// file is too big to keep (the caller streams it).
func (c *blobs) get(path, hash string) ([]byte, bool, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*blob{}
	}
	e := c.m[hash]
	if e == nil {
		e = &blob{}
		c.m[hash] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.b, e.err = load(path, hash) })
	if e.err != nil || e.b == nil {
		c.mu.Lock()
		if c.m[hash] == e {
			delete(c.m, hash) // a later send tries again
		}
		c.mu.Unlock()
		return nil, false, e.err
	}
	c.mu.Lock()
	if c.m[hash] == e && !e.kept {
		e.kept = true
		c.order = append(c.order, hash)
		c.size += int64(len(e.b))
		for c.size > blobBudget && len(c.order) > 1 {
			old := c.order[0]
			c.order = c.order[1:]
			if o := c.m[old]; o != nil {
				c.size -= int64(len(o.b))
				delete(c.m, old)
			}
		}
	}
	c.mu.Unlock()
	return e.b, true, nil
}

// load reads path if it is small enough to keep and checks it hashes to
// hash; nil, nil for a file too big.
func load(path, hash string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > blobMax {
		return nil, nil
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("file shrank while sending: %w", err)
	}
	if filecache.Sum(b) != hash {
		return nil, errors.New("file changed since it was hashed")
	}
	return b, nil
}
