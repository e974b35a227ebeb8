package slave

import (
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// TestSeveralMasters: with masters A and B (primary first), A gets the
// primary session and B a secondary one that every request is refused
// on.
func TestSeveralMasters(t *testing.T) {
	a := newMaster(t, steady)
	b := newMasterKeys(t, steady, a.keyDir)
	startSlave(t, a, func(c *Config) {
		c.Masters = []string{a.ln.Addr().String(), b.ln.Addr().String()}
		c.Power = func(string) error { t.Error("power action with its primary master up"); return nil }
	})
	sa, sb := a.next(t), b.next(t)
	if sa.hello.Secondary || !sb.hello.Secondary {
		t.Fatalf("hellos: A secondary=%v, B secondary=%v; want A primary, B secondary", sa.hello.Secondary, sb.hello.Secondary)
	}
	for _, h := range []wire.Header{
		{Op: wire.OpExec, Exec: &wire.Exec{Argv: []string{"true"}}},
		{Op: wire.OpControl, Control: &wire.Control{Power: "reboot"}},
		{Op: wire.OpPut, File: &wire.File{Path: "/tmp/x"}},
	} {
		st := sb.open(t, h)
		var r wire.Result
		if err := wire.Read(st, &r); err != nil || r.Code != wire.CodePermission || !strings.Contains(r.Err, "obeys only its primary master, "+a.ln.Addr().String()) {
			t.Errorf("%s from the secondary master: got %+v, %v; want refused, naming the primary", h.Op, r, err)
		}
		st.Close()
	}
	// The primary's session still works.
	r := sa.start(t, wire.Exec{Argv: []string{"echo", "primary"}}, program(t, "/bin/echo"), execOpts{})
	if res := r.wait(t); res != (wire.Result{}) || r.stdout.String() != "primary\n" {
		t.Errorf("job from the primary: got %+v %q", res, r.stdout.String())
	}
}

// TestPrimaryRefusing: the master that booted the node (first) refusing
// it for a while — its session from before a reboot still open — is
// retried; the next master never becomes the primary meanwhile.
func TestPrimaryRefusing(t *testing.T) {
	a := newMaster(t, steady)
	b := newMasterKeys(t, steady, a.keyDir)
	a.refuse.Store("node 3 is connected with its pinned key")
	startSlave(t, a, func(c *Config) { c.Masters = []string{a.ln.Addr().String(), b.ln.Addr().String()} })
	if s := b.next(t); !s.hello.Secondary {
		t.Fatal("B got a primary session while A, the node's first master, refused it")
	}
	deadline := time.Now().Add(wait)
	for a.hellos.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the node did not retry A")
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.refuse.Store("")
	if s := a.next(t); s.hello.Secondary {
		t.Fatal("A, once it accepts, got a secondary session")
	}
	select {
	case s := <-b.sessions:
		t.Errorf("B got another session (secondary %v)", s.hello.Secondary)
	default:
	}
}

// TestReparent: once the primary master has been gone for two ping
// intervals while a secondary is connected, the node reboots (a cold
// re-parenting); not before, and not while the primary answers.
func TestReparent(t *testing.T) {
	const interval = 200 * time.Millisecond
	a := newMaster(t, interval)
	b := newMasterKeys(t, interval, a.keyDir)
	acts := make(chan string, 1)
	startSlave(t, a, func(c *Config) {
		c.Masters = []string{a.ln.Addr().String(), b.ln.Addr().String()}
		c.Power = func(act string) error {
			select {
			case acts <- act:
			default: // it asks again at each redial
			}
			return nil
		}
	})
	sa := a.next(t)
	b.next(t)
	// A restarting (its session dropped, then answering again) is no
	// reason to leave it.
	sa.mux.Close()
	sa = a.next(t)
	select {
	case act := <-acts:
		t.Fatalf("power %q after a reconnect to the primary", act)
	case <-time.After(4 * interval):
	}
	// A gone for good: nothing listens, its session ends.
	a.ln.Close()
	lost := time.Now()
	sa.mux.Close()
	select {
	case act := <-acts:
		if act != "reboot" {
			t.Errorf("got power %q, want reboot", act)
		}
		if d := time.Since(lost); d < 2*interval {
			t.Errorf("rebooted %v after the primary went; want at least two ping intervals (%v)", d, 2*interval)
		}
	case <-time.After(wait):
		t.Fatal("the node never re-parented")
	}
}
