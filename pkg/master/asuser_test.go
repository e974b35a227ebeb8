package master

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// TestAsUserBound: a user whose operations all hang (a FUSE file that
// never answers) waits for a slot once PerUser are running — and gives up
// when the client does — while another user and root go ahead; a slot
// freed lets the next one run.
func TestAsUserBound(t *testing.T) {
	var running sync.WaitGroup
	a := asUser{run: func(_ wire.Cred, fn func() error) error { return fn() }}
	ctx := context.Background()
	hang := make(chan struct{})
	started := make(chan struct{}, PerUser)
	for range PerUser {
		running.Add(1)
		go func() {
			defer running.Done()
			a.do(ctx, wire.Cred{UID: 1000}, func() error { started <- struct{}{}; <-hang; return nil })
		}()
	}
	for range PerUser {
		<-started
	}

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	ran := false
	err := a.do(short, wire.Cred{UID: 1000}, func() error { ran = true; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Errorf("uid 1000's %dth operation: got %v (ran %v); want it to wait and give up", PerUser+1, err, ran)
	}
	for _, uid := range []uint32{1001, 0} {
		if err := a.do(ctx, wire.Cred{UID: uid}, func() error { return nil }); err != nil {
			t.Errorf("uid %d held up by uid 1000: %v", uid, err)
		}
	}

	next := make(chan error, 1)
	go func() { next <- a.do(ctx, wire.Cred{UID: 1000}, func() error { return nil }) }()
	select {
	case err := <-next:
		t.Fatalf("ran with every slot taken: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	hang <- struct{}{} // one finishes
	select {
	case err := <-next:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a freed slot was not taken")
	}
	close(hang)
	running.Wait()
}
