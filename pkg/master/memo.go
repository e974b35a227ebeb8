package master

import (
	"context"
	"os"
	"sync"
	"syscall"
	"time"
)

// memoTTL bounds how long a remembered closure is trusted without being
// resolved again as the caller.
const memoTTL = 10 * time.Second

// closureMemo remembers, for one client connection — one caller — the
// closure of each program it ran. `bpsh -a prog` sends one exec per node,
// all for the same program: the first resolves the closure as the caller
// (a fresh OS thread with the caller's filesystem identity, pkg/creds,
// and an ELF walk), the others wait for it and take the result as it is,
// and later ones check it is still true with a stat per file instead of
// walking again. An entry holds while, for the program and every file and link of
// its closure, nothing a change of content, owner, mode or name would
// move has moved: device, inode, size, mtime and ctime of each file (a
// chmod or chown changes ctime), the target of each link. Anything else —
// a directory's permissions, a new library earlier in the search path —
// is seen within memoTTL, when the entry is resolved again. Failures are
// not remembered.
type closureMemo struct {
	mu sync.Mutex
	m  map[string]*memoEntry
}

type memoEntry struct {
	done chan struct{} // closed once resolved
	at   time.Time
	program
	stat []fileStamp // the program, then every real file
	err  error
}

type fileStamp struct {
	path       string
	dev, ino   uint64
	size       int64
	mtime, ctm int64
}

func stampOf(path string) (fileStamp, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileStamp{}, false
	}
	return fileStamp{path: path, dev: uint64(st.Dev), ino: st.Ino, size: fi.Size(),
		mtime: st.Mtim.Nano(), ctm: st.Ctim.Nano()}, true
}

// valid reports whether e still describes the files, now.
func (e *memoEntry) valid(now time.Time) bool {
	if e.err != nil || now.Sub(e.at) > memoTTL {
		return false
	}
	for _, s := range e.stat {
		if cur, ok := stampOf(s.path); !ok || cur != s {
			return false
		}
	}
	for _, f := range e.files {
		if f.Target == "" {
			continue
		}
		if t, err := os.Readlink(f.Path); err != nil || t != f.Target {
			return false
		}
	}
	return true
}

// resolve returns path's closure for the caller: remembered, or resolved
// as the caller (which also checks the caller may execute path).
func (m *Master) resolve(ctx context.Context, who caller, memo *closureMemo, path string) (program, error) {
	for {
		memo.mu.Lock()
		if memo.m == nil {
			memo.m = map[string]*memoEntry{}
		}
		e := memo.m[path]
		if e == nil {
			e = &memoEntry{done: make(chan struct{})}
			memo.m[path] = e
			memo.mu.Unlock()
			m.fill(ctx, who, e, path)
			if e.err != nil {
				memo.mu.Lock()
				if memo.m[path] == e {
					delete(memo.m, path)
				}
				memo.mu.Unlock()
			}
			return e.program, e.err
		}
		memo.mu.Unlock()
		select {
		case <-e.done: // resolved before this exec asked: check it still holds
			if e.valid(m.clock()) {
				return e.program, nil
			}
		default: // being resolved for a concurrent exec: as fresh as for that one
			<-e.done
			return e.program, e.err
		}
		memo.mu.Lock()
		if memo.m[path] == e {
			delete(memo.m, path)
		}
		memo.mu.Unlock()
	}
}

// fill resolves e as the caller; stamps are taken first, so a change
// during the walk makes the entry invalid rather than stale.
func (m *Master) fill(ctx context.Context, who caller, e *memoEntry, path string) {
	defer close(e.done)
	e.at = m.clock()
	var stamps []fileStamp
	if s, ok := stampOf(path); ok {
		stamps = append(stamps, s)
	}
	e.err = m.asUser.do(ctx, who.cred, func() error {
		if err := syscallAccess(path); err != nil {
			return err
		}
		var err error
		e.program, err = m.closure(path)
		return err
	})
	if e.err != nil {
		return
	}
	for _, real := range e.reals {
		s, ok := stampOf(real)
		if !ok {
			e.at = time.Time{} // cannot be checked: do not reuse
			break
		}
		stamps = append(stamps, s)
	}
	if len(stamps) == 0 {
		e.at = time.Time{}
	}
	e.stat = stamps
}
