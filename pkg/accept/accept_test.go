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
