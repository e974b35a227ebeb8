package logfwd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Forwarder is beoklogd's sending side.
type Forwarder struct {
	// Conn is a connected UDP socket to the syslog server.
	Conn net.Conn
	// Host returns the node's identity; nil = the kernel's host name.
	// Either way an unset name ("", "(none)", "localhost") is replaced by
	// Conn's local address.
	Host func() string
	// Legacy sends the node's own timestamp (legacy_syslog=1).
	Legacy bool
	// Boot is the wall-clock time of boot, for legacy kernel timestamps.
	Boot time.Time
	Log  *slog.Logger

	dropped atomic.Uint64
	mu      sync.Mutex
	last    []byte // the datagram sent last
}

func (f *Forwarder) log() *slog.Logger {
	if f.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Log
}

// identity returns the HOSTNAME to send.
func (f *Forwarder) identity() string {
	var h string
	if f.Host != nil {
		h = f.Host()
	} else {
		h, _ = os.Hostname()
	}
	switch {
	case h == "" || h == "(none)" || h == "localhost" || strings.ContainsAny(h, " \t\n:"):
		if ap, err := netip.ParseAddrPort(f.Conn.LocalAddr().String()); err == nil {
			return ap.Addr().Unmap().String()
		}
		return "-"
	}
	return h
}

// kmsgPace is the least time between two kernel records sent: at most
// 4000 a second, a boot's backlog in well under a second.
const kmsgPace = 250 * time.Microsecond

// Kmsg forwards kernel records read from r (an open /dev/kmsg: one record
// per Read) until ctx ends or r does. /dev/kmsg opened fresh starts at the
// oldest record the kernel still holds, so messages from before the
// network came up are sent too. A send that fails (no route yet, the
// server refusing) is retried with backoff before the next record is
// read: the kernel keeps the rest meanwhile.
func (f *Forwarder) Kmsg(ctx context.Context, r io.Reader) error {
	if c, ok := r.(io.Closer); ok {
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()
	}
	boot := time.Time{}
	if f.Legacy {
		boot = f.Boot
	}
	buf := make([]byte, 16<<10)
	var last time.Time
	for {
		n, err := r.Read(buf)
		switch {
		case errors.Is(err, syscall.EPIPE):
			// The ring buffer overwrote records we had not read yet.
			f.log().Warn("beoklogd: kernel messages lost (ring buffer overrun)")
			continue
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return fmt.Errorf("kmsg: %w", err)
		}
		k, err := ParseKmsg(buf[:n])
		if err != nil {
			f.log().Warn("beoklogd: skipping kmsg record", "err", err)
			continue
		}
		m := k.message(boot)
		if err := f.sendRetry(ctx, m); err != nil {
			return nil // ctx ended
		}
		// Pace the backlog: at boot the kernel holds hundreds of records,
		// and a burst of them would overflow the receiver's socket buffer
		// (UDP drops silently) — more so with many nodes booting at once.
		if next := last.Add(kmsgPace); time.Until(next) > 0 {
			time.Sleep(time.Until(next))
		}
		last = time.Now()
	}
}

// sendRetry sends m, retrying with backoff until it goes or ctx ends.
// A refused send (ECONNREFUSED: an ICMP port unreachable arrived for an
// earlier datagram, and this one was not sent) also re-sends the datagram
// sent just before, which the refusal most likely concerned: a receiver
// that starts late loses nothing from /dev/kmsg.
func (f *Forwarder) sendRetry(ctx context.Context, m Message) error {
	m.Host = f.identity()
	queue := [][]byte{m.Format(f.Legacy)}
	backoff := 50 * time.Millisecond
	for len(queue) > 0 {
		err := f.write(queue[0])
		if err == nil {
			queue = queue[1:]
			continue
		}
		f.log().Debug("beoklogd: send", "err", err)
		if prev := f.takeLast(); errors.Is(err, syscall.ECONNREFUSED) && prev != nil {
			queue = append([][]byte{prev}, queue...)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

// write sends one datagram and remembers it as the last one sent.
func (f *Forwarder) write(p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.Conn.Write(p)
	if err == nil {
		f.last = p
	}
	return err
}

func (f *Forwarder) takeLast() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.last
	f.last = nil
	return p
}

func (f *Forwarder) send(m Message) error {
	m.Host = f.identity()
	return f.write(m.Format(f.Legacy))
}

// ServeDevLog forwards what local programs send to pc (the unix datagram
// socket /dev/log, see ListenDevLog) until ctx ends. A message that
// cannot be sent is dropped and counted — a program's syslog(3) must
// never wait for the network.
func (f *Forwarder) ServeDevLog(ctx context.Context, pc net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	buf := make([]byte, 64<<10)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("/dev/log: %w", err)
		}
		m := ParseLocal(buf[:n])
		if f.Legacy && m.Time.IsZero() {
			m.Time = time.Now()
		}
		if err := f.send(m); err != nil {
			if d := f.dropped.Add(1); d&(d-1) == 0 { // 1, 2, 4, 8…
				f.log().Warn("beoklogd: syslog messages dropped", "count", d, "err", err)
			}
		}
	}
}

// ListenDevLog binds the unix datagram socket at path (/dev/log),
// replacing a stale socket file, mode 0666 so every program may log.
func ListenDevLog(path string) (net.PacketConn, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	pc, err := net.ListenPacket("unixgram", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o666); err != nil {
		pc.Close()
		return nil, err
	}
	return pc, nil
}

// BootTime returns the wall-clock time of boot as the kernel's log clock
// counts it: now minus CLOCK_MONOTONIC.
func BootTime() (time.Time, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return time.Time{}, err
	}
	return time.Now().Add(-time.Duration(ts.Nano())), nil
}
