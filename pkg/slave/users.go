package slave

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// A job's user on the node.
//
// Before a root slave starts a process for another user it runs
// Config.BeforeExec: on a real node, a round trip to the node's
// kickbackproxy, which asks the master's kickback daemon for the user's
// passwd and group entries and upserts them into the node's /etc files.
// The entries stay there, so one call per user is enough for a while:
// knownUsers remembers, by the caller's whole credential (uid, gid and
// groups), each one that succeeded, for userTTL. A job of that user
// within it starts without the round trip; one with other groups (the
// master saw the user's groups change) asks again, and so does any job
// once userTTL has passed, so a changed entry on the master reaches the
// node within a minute. Concurrent jobs of one user (a `bpsh -a` from a node, an MPI
// job's ranks) wait for one call rather than making one each; a call
// that failed is not remembered, and the job runs anyway, as before.
const userTTL = time.Minute

// userMax bounds the users remembered at once.
const userMax = 1024

// knownUsers remembers the users BeforeExec made known (see above).
type knownUsers struct {
	now func() time.Time // time.Now unless a test sets it

	mu sync.Mutex
	m  map[string]*userCall
}

type userCall struct {
	done chan struct{} // closed when the call returned
	at   time.Time
	err  error
}

// ensure runs hook for c unless a call for c succeeded within userTTL,
// or waits for the one under way; it returns the error of the call it
// made or waited for.
func (k *knownUsers) ensure(ctx context.Context, c wire.Cred, hook func(context.Context, wire.Cred) error) error {
	key := credKey(c)
	now := k.clock()
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*userCall{}
	}
	if e := k.m[key]; e != nil {
		select {
		case <-e.done:
			if e.err == nil && now.Sub(e.at) <= userTTL {
				k.mu.Unlock()
				return nil
			}
		default:
			k.mu.Unlock()
			select {
			case <-e.done:
				return e.err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if len(k.m) >= userMax {
		for key, e := range k.m {
			select {
			case <-e.done:
				delete(k.m, key)
			default:
			}
		}
	}
	e := &userCall{done: make(chan struct{}), at: now}
	k.m[key] = e
	k.mu.Unlock()
	e.err = hook(ctx, c)
	close(e.done)
	if e.err != nil {
		k.mu.Lock()
		if k.m[key] == e {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	return e.err
}

func (k *knownUsers) clock() time.Time {
	if k.now != nil {
		return k.now()
	}
	return time.Now()
}

// credKey is c as a map key: uid, gid and the sorted groups.
func credKey(c wire.Cred) string {
	gs := slices.Clone(c.Groups)
	slices.Sort(gs)
	var b strings.Builder
	b.WriteString(strconv.FormatUint(uint64(c.UID), 10))
	b.WriteByte(':')
	b.WriteString(strconv.FormatUint(uint64(c.GID), 10))
	for _, g := range slices.Compact(gs) {
		b.WriteByte(',')
		b.WriteString(strconv.FormatUint(uint64(g), 10))
	}
	return b.String()
}
