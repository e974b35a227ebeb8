package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// NetnsDir is where `ip netns add` keeps a namespace's handle.
const NetnsDir = "/run/netns"

// Do runs fn on a thread inside the lab's network namespace: sockets fn
// opens belong to the namespace for good, whichever thread uses them
// later. The thread returns to the host's namespace afterwards, or, if
// it cannot, ends with fn's goroutine so no other goroutine runs there.
func (l *Lab) Do(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // unlocked only once back in the host's namespace
		host, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer host.Close()
		ns, err := os.Open(filepath.Join(NetnsDir, l.NS))
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("enter namespace %s: %w", l.NS, err)
			return
		}
		err = fn()
		if unix.Setns(int(host.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// Dial connects to addr from inside the lab's namespace (see Do).
func (l *Lab) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := l.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Forward serves ln, a listener of the host, until ctx ends: each
// connection is joined to a new connection to addr inside the namespace.
// It is how the host reaches what listens only there, such as the
// master's beostatus dashboard on the namespace's 127.0.0.1:5546 (beo
// lab hands its forwarder to beostat as $BEOSTAT_URL).
func (l *Lab) Forward(ctx context.Context, ln net.Listener, addr string) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			in, err := l.Dial(ctx, "tcp", addr)
			if err != nil {
				l.log.Warn("forward", "to", addr, "ns", l.NS, "err", err)
				return
			}
			defer in.Close()
			stop := context.AfterFunc(ctx, func() { c.Close(); in.Close() })
			defer stop()
			done := make(chan struct{})
			go func() {
				io.Copy(in, c)
				if tc, ok := in.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				close(done)
			}()
			io.Copy(c, in)
			if tc, ok := c.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			<-done
		}()
	}
}
