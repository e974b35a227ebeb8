package master

import (
	"context"
	"fmt"
	"sync"

	"github.com/beo-cluster/beo/pkg/wire"
)

// PerUser is how many filesystem operations the master runs at once as
// one user other than root: reading a bpsh program's closure, or a bpcp's
// sources. Each runs on a thread of its own (creds.Do), and can block in
// the kernel for as long as the file's owner likes — a file on the user's
// own FUSE mount whose daemon never answers — holding that thread. Without
// a bound, one user could pile up blocked threads until the master reached
// the runtime's thread limit and died; with it, that user's further
// requests wait their turn (until their client goes away), and nobody
// else's do. 64 leaves room for a script's parallel bpcp's, which hold a
// slot while they stream, beside its bpsh's. Root's operations run on the
// caller's goroutine and are not counted.
const PerUser = 64

// asUser runs filesystem work as a caller, at most PerUser at once per
// uid (root: unbounded).
type asUser struct {
	run func(wire.Cred, func() error) error // creds.Do

	mu    sync.Mutex
	slots map[uint32]chan struct{} // one token per operation running
}

// do runs fn as c through a.run once c's uid has a free slot, or gives
// up when ctx ends first.
func (a *asUser) do(ctx context.Context, c wire.Cred, fn func() error) error {
	if c.UID == 0 {
		return a.run(c, fn)
	}
	a.mu.Lock()
	if a.slots == nil {
		a.slots = map[uint32]chan struct{}{}
	}
	s := a.slots[c.UID]
	if s == nil {
		s = make(chan struct{}, PerUser)
		a.slots[c.UID] = s
	}
	a.mu.Unlock()
	select {
	case s <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting behind %d file operations of uid %d still running: %w", PerUser, c.UID, ctx.Err())
	}
	defer func() { <-s }()
	return a.run(c, fn)
}
