package tcpreset

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRefusesLoopback(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "127.1.0.5", "::1", "::ffff:127.0.0.1", "0.0.0.0"} {
		if _, err := Reset(netip.MustParseAddr(a)); err == nil {
			t.Errorf("Reset(%s) = nil error, want a refusal", a)
		}
	}
}

// TestReset: in a namespace of its own, a connection to 192.0.2.1 (an
// address on the namespace's lo) is destroyed on both ends; one to
// another address is left alone.
func TestReset(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root (a network namespace, CAP_NET_ADMIN)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2)")
	}
	ns := fmt.Sprintf("beo-tcpreset-%d", os.Getpid())
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "addr", "add", "192.0.2.1/32", "dev", "lo"},
		{"-n", ns, "addr", "add", "192.0.2.2/32", "dev", "lo"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
		if args[0] == "netns" {
			t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		}
	}
	done := make(chan error, 1)
	go func() {
		// This thread enters the namespace and is never given back
		// (the goroutine ends locked, so Go discards the thread).
		runtime.LockOSThread()
		done <- inNamespace("/run/netns/" + ns)
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func inNamespace(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return err
	}
	pair := func(to string) (net.Conn, net.Conn, error) {
		ln, err := net.Listen("tcp", to+":0")
		if err != nil {
			return nil, nil, err
		}
		defer ln.Close()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return nil, nil, err
		}
		s, err := ln.Accept()
		return c, s, err
	}
	c1, s1, err := pair("192.0.2.1")
	if err != nil {
		return err
	}
	c2, s2, err := pair("192.0.2.2")
	if err != nil {
		return err
	}
	n, err := Reset(netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		return fmt.Errorf("Reset: %d, %w", n, err)
	}
	// Both ends of the connection to 192.0.2.1 have that peer.
	if n != 2 {
		return fmt.Errorf("Reset destroyed %d sockets, want 2", n)
	}
	for _, c := range []net.Conn{c1, s1} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		// ECONNRESET when the other end's destruction (its RST) came first.
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNABORTED) && !errors.Is(err, syscall.ECONNRESET) {
			return fmt.Errorf("read on a reset connection: %v, want ECONNABORTED", err)
		}
	}
	if _, err := c2.Write([]byte("x")); err != nil {
		return fmt.Errorf("the other connection: %w", err)
	}
	s2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := s2.Read(make([]byte, 1)); err != nil {
		return fmt.Errorf("the other connection: %w", err)
	}
	return nil
}
