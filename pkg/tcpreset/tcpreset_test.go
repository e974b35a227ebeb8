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
	// pair connects from the address from to a listener on listen
	// (port 0; "" = dual stack, Go's "tcp" on ":0" as mpiexec's and most
	// servers' listeners: its accepted socket is IPv6 with an IPv4-mapped
	// peer) dialled at to.
	pair := func(from, listen, to string) (client, server net.Conn, err error) {
		ln, err := net.Listen("tcp", listen+":0")
		if err != nil {
			return nil, nil, err
		}
		defer ln.Close()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", net.JoinHostPort(to, fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)))
		if err != nil {
			return nil, nil, err
		}
		s, err := ln.Accept()
		return c, s, err
	}
	// The "node" is 192.0.2.1, the "master" 192.0.2.2: each pair's server
	// is the master's end.
	c1, s1, err := pair("192.0.2.1", "192.0.2.2", "192.0.2.2")
	if err != nil {
		return err
	}
	c2, s2, err := pair("192.0.2.1", "", "192.0.2.2")
	if err != nil {
		return err
	}
	if a := s2.RemoteAddr().(*net.TCPAddr); a.IP.To4() == nil || a.IP.To16() == nil {
		return fmt.Errorf("the dual-stack pair's peer is %v", a)
	}
	c3, s3, err := pair("192.0.2.2", "192.0.2.2", "192.0.2.2") // no node in it
	if err != nil {
		return err
	}
	n, err := Reset(netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		return fmt.Errorf("Reset: %d, %w", n, err)
	}
	// The master's ends whose peer is the node: s1 (IPv4) and s2 (dual
	// stack). The node's own ends c1, c2 have the master as their peer.
	if n != 2 {
		return fmt.Errorf("Reset destroyed %d sockets, want 2", n)
	}
	for _, tc := range []struct {
		c    net.Conn
		want error
	}{{s1, syscall.ECONNABORTED}, {s2, syscall.ECONNABORTED}, {c1, syscall.ECONNRESET}, {c2, syscall.ECONNRESET}} {
		tc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := tc.c.Read(make([]byte, 1)); !errors.Is(err, tc.want) {
			return fmt.Errorf("read on %v → %v after the reset: %v, want %v", tc.c.LocalAddr(), tc.c.RemoteAddr(), err, tc.want)
		}
	}
	if _, err := c3.Write([]byte("x")); err != nil {
		return fmt.Errorf("the other connection: %w", err)
	}
	s3.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := s3.Read(make([]byte, 1)); err != nil {
		return fmt.Errorf("the other connection: %w", err)
	}
	return nil
}
