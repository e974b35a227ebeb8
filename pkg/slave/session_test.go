package slave

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

func TestHello(t *testing.T) {
	m := newMaster(t, 250*time.Millisecond)
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
	m := newMaster(t, steady)
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
		code wire.Code
	}{
		{"unknown op", wire.Header{Op: "bogus"}, `unsupported request "bogus"`, wire.CodeVersion},
		{"exec without exec", wire.Header{Op: wire.OpExec}, `unsupported request "exec"`, wire.CodeVersion},
		{"client op", wire.Header{Op: wire.OpStatus}, `unsupported request "status"`, wire.CodeVersion},
		{"bad power", wire.Header{Op: wire.OpControl, Control: &wire.Control{Power: "explode"}},
			`unsupported power action "explode"`, wire.CodeInvalid},
		{"no power control", wire.Header{Op: wire.OpControl, Control: &wire.Control{Power: "reboot"}},
			`reboot: power control not available`, wire.CodeInvalid},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			st := s.open(t, tt.h)
			defer st.Close()
			var r wire.Result
			if err := wire.Read(st, &r); err != nil || r.Err != tt.want || r.Code != tt.code || r.Node == nil || *r.Node != 3 {
				t.Errorf("got %+v, %v; want Err %q, Code %q, Node 3", r, err, tt.want, tt.code)
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
	m := newMaster(t, steady)
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
