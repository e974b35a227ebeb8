package slave

import (
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

func TestHello(t *testing.T) {
	m := newMaster(t, 100*time.Millisecond)
	startSlave(t, m)
	s := m.next(t)
	h := s.hello
	if h.Version != wire.Version || h.Build != "test" || h.Node != -1 {
		t.Errorf("hello: got %+v, want version %d, build test, node -1", h, wire.Version)
	}
	deadline := time.Now().Add(wait)
	for s.pongs.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no pongs")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBadStreams sends what a broken or hostile master might: the slave
// closes or refuses each stream and keeps serving.
func TestBadStreams(t *testing.T) {
	m := newMaster(t, 100*time.Millisecond)
	startSlave(t, m)
	s := m.next(t)
	raw := func(b []byte) net.Conn {
		st, err := s.mux.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		st.SetDeadline(time.Now().Add(wait))
		st.Write(b)
		return st
	}
	frame := func(body string) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
		return append(b, body...)
	}
	closed := []struct {
		name string
		b    []byte
	}{
		{"not json", frame("{not json")},
		{"zero length", []byte{0, 0, 0, 0}},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff}},
		{"wrong shape", frame(`{"op": 7}`)},
	}
	for _, tt := range closed {
		t.Run(tt.name, func(t *testing.T) {
			st := raw(tt.b)
			defer st.Close()
			if n, err := io.Copy(io.Discard, st); err != nil || n != 0 {
				t.Errorf("got %d bytes, %v; want the stream closed with nothing said", n, err)
			}
		})
	}
	refused := []struct {
		name string
		h    wire.Header
		want string
	}{
		{"unknown op", wire.Header{Op: "bogus"}, `node 3: unsupported request "bogus"`},
		{"exec without exec", wire.Header{Op: wire.OpExec}, `node 3: unsupported request "exec"`},
		{"client op", wire.Header{Op: wire.OpStatus}, `node 3: unsupported request "status"`},
		{"bad power", wire.Header{Op: wire.OpControl, Control: &wire.Control{Power: "explode"}},
			`node 3: unsupported power action "explode"`},
		{"no power control", wire.Header{Op: wire.OpControl, Control: &wire.Control{Power: "reboot"}},
			`node 3: reboot: power control not available`},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			st := s.open(t, tt.h)
			defer st.Close()
			var r wire.Result
			if err := wire.Read(st, &r); err != nil || r.Err != tt.want {
				t.Errorf("got %+v, %v; want Err %q", r, err, tt.want)
			}
		})
	}
	// Still serving, on the same session.
	r := s.start(t, wire.Exec{Argv: []string{"echo", "alive"}}, program(t, "/bin/echo"), execOpts{})
	if res := r.wait(t); res != (wire.Result{}) || r.stdout.String() != "alive\n" {
		t.Errorf("after bad streams: got %+v %q", res, r.stdout.String())
	}
	select {
	case s2 := <-m.sessions:
		t.Errorf("slave reconnected (%v) after bad streams", s2.hello)
	default:
	}
}

func TestReconnect(t *testing.T) {
	m := newMaster(t, 100*time.Millisecond)
	startSlave(t, m)

	s := m.next(t)
	s.mux.Close() // the master drops the connection
	s = m.next(t)

	s.pings.Store(false) // a master that stops pinging is gone
	start := time.Now()
	select {
	case <-s.closed:
	case <-time.After(wait):
		t.Fatal("slave kept a session without pings")
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("dropped after %s, want about 3 ping intervals (300ms)", d)
	}
	s = m.next(t)

	m.refuse.Store("build mismatch") // refused hellos are retried
	s.mux.Close()
	n := m.hellos.Load()
	deadline := time.Now().Add(wait)
	for m.hellos.Load() < n+2 {
		if time.Now().After(deadline) {
			t.Fatal("slave did not retry after a refusal")
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.refuse.Store("")
	s = m.next(t)
	r := s.start(t, wire.Exec{Argv: []string{"echo", "back"}}, program(t, "/bin/echo"), execOpts{})
	if res := r.wait(t); res != (wire.Result{}) || r.stdout.String() != "back\n" {
		t.Errorf("after reconnecting: got %+v %q", res, r.stdout.String())
	}
}

func TestControl(t *testing.T) {
	m := newMaster(t, 100*time.Millisecond)
	acts := make(chan string, 1)
	startSlave(t, m, func(c *Config) {
		c.Power = func(a string) error { acts <- a; return nil }
	})
	s := m.next(t)
	st := s.open(t, wire.Header{Op: wire.OpControl, Control: &wire.Control{Power: "pwroff"}})
	var r wire.Result
	if err := wire.Read(st, &r); err != nil || r.Err != "" {
		t.Fatalf("got %+v, %v", r, err)
	}
	select {
	case a := <-acts:
		t.Fatalf("power %q ran before the master closed the stream", a)
	default:
	}
	st.Close()
	select {
	case a := <-acts:
		if a != "pwroff" {
			t.Errorf("got power %q, want pwroff", a)
		}
	case <-time.After(wait):
		t.Fatal("power action never ran")
	}
}

func TestRendezvous(t *testing.T) {
	pipe := func() (net.Conn, net.Conn) { return net.Pipe() }
	isClosed := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF || err != nil && strings.Contains(err.Error(), "closed")
	}
	const d = 50 * time.Millisecond
	waitEmpty := func(t *testing.T, r *rendezvous) {
		t.Helper()
		deadline := time.Now().Add(wait)
		for r.pending() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d slots still held", r.pending())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	t.Run("streams first", func(t *testing.T) {
		r := newRendezvous(wait)
		defer r.close()
		for fd := range 3 {
			a, _ := pipe()
			r.deliver(7, fd, a)
		}
		got, err := r.claim(7)
		if err != nil || got[0] == nil || got[2] == nil || r.pending() != 0 {
			t.Errorf("got %v, %v, %d pending", got, err, r.pending())
		}
	})
	t.Run("exec first", func(t *testing.T) {
		r := newRendezvous(wait)
		defer r.close()
		done := make(chan error, 1)
		go func() { _, err := r.claim(8); done <- err }()
		for fd := range 3 {
			a, _ := pipe()
			r.deliver(8, fd, a)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	t.Run("unclaimed streams expire", func(t *testing.T) {
		r := newRendezvous(d)
		defer r.close()
		a, b := pipe()
		r.deliver(9, 1, a)
		waitEmpty(t, r)
		if !isClosed(b) {
			t.Error("expired stream left open")
		}
	})
	t.Run("exec gives up", func(t *testing.T) {
		r := newRendezvous(d)
		defer r.close()
		a, b := pipe()
		r.deliver(10, 0, a)
		if _, err := r.claim(10); err != errAttachTimeout {
			t.Errorf("got %v, want %v", err, errAttachTimeout)
		}
		if !isClosed(b) {
			t.Error("stream of a failed exec left open")
		}
		late, lb := pipe()
		r.deliver(10, 1, late) // a latecomer is closed at once
		if !isClosed(lb) {
			t.Error("latecomer left open")
		}
		waitEmpty(t, r)
	})
	t.Run("duplicates and bad fds", func(t *testing.T) {
		r := newRendezvous(wait)
		defer r.close()
		a, _ := pipe()
		dup, db := pipe()
		bad, bb := pipe()
		r.deliver(11, 2, a)
		r.deliver(11, 2, dup)
		r.deliver(11, 3, bad)
		if !isClosed(db) || !isClosed(bb) {
			t.Error("duplicate or bad stream left open")
		}
	})
	t.Run("close", func(t *testing.T) {
		r := newRendezvous(wait)
		a, b := pipe()
		r.deliver(12, 0, a)
		done := make(chan error, 1)
		go func() { _, err := r.claim(13); done <- err }()
		r.close()
		if err := <-done; err != errSessionEnded {
			t.Errorf("claim: got %v, want %v", err, errSessionEnded)
		}
		if !isClosed(b) {
			t.Error("stream left open after close")
		}
	})
}
