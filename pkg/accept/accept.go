// Package accept runs a daemon's accept loop so that no error a client
// can provoke ends the daemon.
//
// A listener's Accept fails for reasons that pass: the process is out of
// file descriptors (EMFILE, ENFILE — a local user holding thousands of
// idle connections did exactly this to bpmaster), a connection was reset
// before it was taken (ECONNABORTED), the kernel is short of buffers
// (ENOBUFS, ENOMEM). Loop treats every such error as net/http's server
// does: it waits, doubling from 5 ms to 1 s, logs the first error of a
// streak and the streak's length when it ends, and tries again. Only a
// closed listener (ctx ended, or the owner closed it) ends the loop;
// any other error is returned.
//
// Every listener `beo master` owns goes through Loop (the client socket,
// the node port, kickback) or through net/http.Server.Serve, which backs
// off the same way (HTTP boot, the dashboard).
package accept

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// Backoff bounds: the first wait after a temporary error, and the longest.
const (
	MinDelay = 5 * time.Millisecond
	MaxDelay = time.Second
)

// Loop accepts connections from ln and hands each to handle until ctx
// ends (then it closes ln and returns nil). handle is called on the
// loop's goroutine and must not block: it starts the connection's own
// goroutine (so a caller can count or refuse before it does). what names
// the listener in errors and log lines ("clients", "nodes").
func Loop(ctx context.Context, ln net.Listener, log *slog.Logger, what string, handle func(net.Conn)) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var delay time.Duration
	streak := 0
	for {
		c, err := ln.Accept()
		if err == nil {
			if streak > 0 {
				log.Info("accepting again", "listener", what, "failed_accepts", streak)
			}
			delay, streak = 0, 0
			handle(c)
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if !Temporary(err) {
			return fmt.Errorf("accept %s: %w", what, err)
		}
		if streak == 0 {
			log.Warn("accept failed; backing off", "listener", what, "err", err)
		}
		streak++
		delay = min(max(2*delay, MinDelay), MaxDelay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Temporary reports whether an Accept error passes by itself: a timeout,
// or one of the errnos a busy or attacked server sees.
func Temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED,
		syscall.ENOBUFS, syscall.ENOMEM, syscall.EAGAIN, syscall.EINTR, syscall.ECONNRESET, syscall.EPROTO, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
