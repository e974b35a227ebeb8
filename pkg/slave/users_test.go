package slave

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// TestKnownUsers: a user's call holds for userTTL and for exactly its
// credential; a failed call is not remembered; concurrent jobs of one
// user share one call.
func TestKnownUsers(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	k := &knownUsers{now: func() time.Time { return now }}
	var calls atomic.Int32
	fail := false
	hook := func(context.Context, wire.Cred) error {
		calls.Add(1)
		if fail {
			return errors.New("no kickbackproxy")
		}
		return nil
	}
	alice := wire.Cred{UID: 1000, GID: 1000, Groups: []uint32{1000, 27}}
	steps := []struct {
		name  string
		cred  wire.Cred
		fail  bool
		after time.Duration
		call  bool
	}{
		{"first job", alice, false, 0, true},
		{"again", alice, false, time.Second, false},
		{"groups in another order", wire.Cred{UID: 1000, GID: 1000, Groups: []uint32{27, 1000}}, false, 0, false},
		{"another group", wire.Cred{UID: 1000, GID: 1000, Groups: []uint32{1000}}, false, 0, true},
		{"another user", wire.Cred{UID: 1001, GID: 1001}, false, 0, true},
		{"past the ttl", alice, false, userTTL, true},
		{"within the new ttl", alice, false, userTTL / 2, false},
		{"failing", wire.Cred{UID: 1002, GID: 1002}, true, 0, true},
		{"failed: asked again", wire.Cred{UID: 1002, GID: 1002}, true, 0, true},
	}
	for _, s := range steps {
		now = now.Add(s.after)
		fail = s.fail
		before := calls.Load()
		err := k.ensure(context.Background(), s.cred, hook)
		if (err != nil) != s.fail {
			t.Errorf("%s: got err %v, want failure %v", s.name, err, s.fail)
		}
		if got := calls.Load() != before; got != s.call {
			t.Errorf("%s: called %v, want %v", s.name, got, s.call)
		}
	}

	// Concurrent jobs of a new user: one call, every job after it. The
	// bubble's Wait returns once all 16 are blocked — one in the call,
	// the others on it — before the call is let go.
	synctest.Test(t, func(t *testing.T) {
		fail = false
		before := calls.Load()
		release := make(chan struct{})
		slow := func(ctx context.Context, c wire.Cred) error {
			<-release
			return hook(ctx, c)
		}
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if err := k.ensure(context.Background(), wire.Cred{UID: 2000, GID: 2000}, slow); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		if got := calls.Load() - before; got != 1 {
			t.Errorf("16 concurrent jobs of one user: %d calls, want 1", got)
		}
	})
}
