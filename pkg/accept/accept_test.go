package accept

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// script is a listener whose Accept returns its errors in turn, then
// blocks until closed.
type script struct {
	errs   []error
	closed chan struct{}
}

func (s *script) Accept() (net.Conn, error) {
	if len(s.errs) > 0 {
		e := s.errs[0]
		s.errs = s.errs[1:]
		if e == nil {
			a, _ := net.Pipe()
			return a, nil
		}
		return nil, e
	}
	<-s.closed
	return nil, net.ErrClosed
}
func (s *script) Close() error {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	return nil
}
func (s *script) Addr() net.Addr { return &net.UnixAddr{Name: "script"} }

func emfile() error {
	return &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

func TestLoopOutlivesTemporaryErrors(t *testing.T) {
	ln := &script{errs: []error{emfile(), emfile(), nil, syscall.ECONNABORTED, nil}, closed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	handled := make(chan struct{}, 4)
	done := make(chan error, 1)
	go func() {
		done <- Loop(ctx, ln, nil, "test", func(c net.Conn) { go func() { c.Close(); handled <- struct{}{} }() })
	}()
	for i := 0; i < 2; i++ {
		select {
		case <-handled:
		case err := <-done:
			t.Fatalf("loop ended after %d connections: %v", i, err)
		case <-time.After(5 * time.Second):
			t.Fatalf("connection %d not handled", i)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("after cancel: got %v, want nil", err)
	}
}

func TestLoopReturnsOtherErrors(t *testing.T) {
	bad := errors.New("listener broken")
	ln := &script{errs: []error{bad}, closed: make(chan struct{})}
	err := Loop(context.Background(), ln, nil, "test", func(net.Conn) {})
	if !errors.Is(err, bad) {
		t.Errorf("got %v, want %v", err, bad)
	}
}

func TestTemporary(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{emfile(), true},
		{syscall.ENFILE, true},
		{syscall.ENOBUFS, true},
		{net.ErrClosed, false},
		{errors.New("x"), false},
	} {
		if got := Temporary(tc.err); got != tc.want {
			t.Errorf("Temporary(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestPerAddr: connections over the bound from one address are closed
// at once; other addresses are served; a closed connection frees its place.
func TestPerAddr(t *testing.T) {
	inner, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := PerAddr(inner, 2, nil, "test")
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp4", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// closedByServer: the server end closed c without a byte.
	closedByServer := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	}
	a1, a2, a3 := dial("127.0.0.1"), dial("127.0.0.1"), dial("127.0.0.1")
	defer a1.Close()
	defer a2.Close()
	defer a3.Close()
	if !closedByServer(a3) {
		t.Error("a third connection from 127.0.0.1 was kept")
	}
	b := dial("127.0.0.2")
	defer b.Close()
	got := map[string]int{}
	for range 3 {
		select {
		case c := <-accepted:
			got[c.RemoteAddr().(*net.TCPAddr).IP.String()]++
			defer c.Close()
			if c.RemoteAddr().String() == a1.LocalAddr().String() {
				c.Close() // frees a place for 127.0.0.1
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("accepted %v, want two from 127.0.0.1 and one from 127.0.0.2", got)
		}
	}
	if got["127.0.0.1"] != 2 || got["127.0.0.2"] != 1 {
		t.Errorf("accepted %v, want two from 127.0.0.1 and one from 127.0.0.2", got)
	}
	a4 := dial("127.0.0.1")
	defer a4.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Error("a place freed by a close was not given to the next connection")
	}
}
