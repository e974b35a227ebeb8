package logfwd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// recvBuffer is the receive socket buffer asked for: room for a burst of
// boot messages from many nodes.
const recvBuffer = 4 << 20

// DefaultDir is where Receiver writes.
const DefaultDir = "/var/log/beowulf"

// DefaultMaxFile is the size a sender's file may reach before Receiver
// moves it aside (see Receiver.MaxFile).
const DefaultMaxFile = 32 << 20

// Receiver is the master's syslog receiver for when no syslog daemon
// listens (see the package doc).
type Receiver struct {
	Dir string // default DefaultDir
	// Node maps a datagram's source address to a node number (config
	// NodeByAddr); nil = every sender is "other".
	Node func(netip.Addr) (int, bool)
	Now  func() time.Time // default time.Now
	Log  *slog.Logger
	// MaxFile bounds a sender's file (default DefaultMaxFile): a message
	// that would take it past this size first moves it to FILE.1
	// (replacing the one before) and starts FILE again with a line that
	// says so. Anyone on a node can send syslog datagrams, so a flood
	// costs the master at most twice this much disk per sender, and the
	// last MaxFile bytes of what it said are always there.
	MaxFile int64
}

// Serve receives datagrams on pc until ctx ends; it closes pc.
func (r *Receiver) Serve(ctx context.Context, pc net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	if err := os.MkdirAll(r.dir(), 0o755); err != nil {
		return fmt.Errorf("syslog receiver: %w", err)
	}
	if u, ok := pc.(*net.UDPConn); ok {
		u.SetReadBuffer(recvBuffer) // best effort: capped by net.core.rmem_max
	}
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("syslog receiver: %w", err)
		}
		src := netip.Addr{}
		if ap, err := netip.ParseAddrPort(from.String()); err == nil {
			src = ap.Addr().Unmap()
		}
		if err := r.Handle(src, buf[:n]); err != nil {
			r.log().Warn("syslog receiver", "from", src, "err", err)
		}
	}
}

func (r *Receiver) dir() string {
	if r.Dir == "" {
		return DefaultDir
	}
	return r.Dir
}

func (r *Receiver) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// File returns the file messages from src go to.
func (r *Receiver) File(src netip.Addr) string {
	if r.Node != nil {
		if n, ok := r.Node(src); ok {
			return filepath.Join(r.dir(), "messages."+strconv.Itoa(n))
		}
	}
	return filepath.Join(r.dir(), "messages.other")
}

// Handle writes one datagram from src; one without a <PRI> is the text
// of a user.notice message (ParseLocal).
func (r *Receiver) Handle(src netip.Addr, b []byte) error {
	m := ParseLocal(b)
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	path := r.File(src)
	return r.write(path, r.Line(src, m, now), func() []byte {
		host := m.Host
		if host == "" {
			host = src.String()
		}
		return r.Line(src, Message{Host: host, Tag: "beo-logs", Text: fmt.Sprintf(
			"this file reached %d bytes: the lines before this one are in %s.1", r.maxFile(), filepath.Base(path))}, now)
	})
}

func (r *Receiver) maxFile() int64 {
	if r.MaxFile <= 0 {
		return DefaultMaxFile
	}
	return r.MaxFile
}

// write appends line to path, moving path to path.1 first if line would
// take it past MaxFile; the new file starts with note().
func (r *Receiver) write(path string, line []byte, note func() []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 && fi.Size()+int64(len(line)) > r.maxFile() {
		f.Close()
		if err := os.Rename(path, path+".1"); err != nil {
			return err
		}
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640); err != nil {
			return err
		}
		line = append(note(), line...)
	}
	_, err = f.Write(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// TimeFormat is the receiver's timestamp, rsyslog's default high-precision
// form.
const TimeFormat = "2006-01-02T15:04:05.000000-07:00"

// Line formats m, received from src at now, as one file line.
func (r *Receiver) Line(src netip.Addr, m Message, now time.Time) []byte {
	t := now
	if !m.Time.IsZero() {
		// RFC 3164 stamps have no year or zone: the receiver's.
		t = time.Date(now.Year(), m.Time.Month(), m.Time.Day(), m.Time.Hour(), m.Time.Minute(), m.Time.Second(), 0, now.Location())
		if t.After(now.Add(24 * time.Hour)) { // December's message read in January
			t = t.AddDate(-1, 0, 0)
		}
	}
	host := m.Host
	if host == "" {
		host = src.String()
	}
	var b strings.Builder
	b.WriteString(t.Format(TimeFormat))
	b.WriteByte(' ')
	escape(&b, host)
	b.WriteByte(' ')
	if m.Tag != "" {
		escape(&b, m.Tag)
		b.WriteString(": ")
	}
	escape(&b, m.Text)
	b.WriteByte('\n')
	return []byte(b.String())
}

// escape writes s with control characters as #ooo, as rsyslog does.
func escape(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			fmt.Fprintf(b, "#%03o", c)
			continue
		}
		b.WriteByte(c)
	}
}

// ErrSyslogListening means another program — a syslog daemon — already
// has the syslog port: node messages go there, no Receiver is needed.
var ErrSyslogListening = errors.New("a syslog daemon already listens there")

// ListenUDP binds the receiver's socket, or reports ErrSyslogListening when
// the port is taken.
func ListenUDP(addr string) (net.PacketConn, error) {
	pc, err := net.ListenPacket("udp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%s: %w", addr, ErrSyslogListening)
	}
	return pc, err
}
