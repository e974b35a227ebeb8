package accept

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
)

// PerAddr returns ln with at most max connections open at once from
// one remote address: Accept closes a connection over that on the spot
// (a warning names the peer; `beo master`'s ratelog holds a flood of
// them back) and waits for the next. Unlike a bound on all connections,
// a flood from one host — a user's job on a node opening connections it
// never uses, which needs no privilege — then costs that host alone its
// service, not every node. what names the listener in the warning.
func PerAddr(ln net.Listener, max int, log *slog.Logger, what string) net.Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &perAddr{Listener: ln, slots: Slots{Max: max}, log: log, what: what}
}

type perAddr struct {
	net.Listener
	slots Slots
	log   *slog.Logger
	what  string
}

func (l *perAddr) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		a := remoteAddr(c)
		release, n := l.slots.Take(a)
		if release == nil {
			l.log.Warn("refused connection: too many from one address", "listener", l.what, "peer", a, "open", n)
			c.Close()
			continue
		}
		return &counted{Conn: c, release: sync.OnceFunc(release)}, nil
	}
}

// Slots counts what is in use by address, at most Max per address.
// The zero value with Max set is ready.
type Slots struct {
	Max  int
	mu   sync.Mutex
	used map[netip.Addr]int
}

// Take claims one of a's places and returns its release; nil and the
// count in use when a has none left.
func (s *Slots) Take(a netip.Addr) (release func(), n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n = s.used[a]; n >= s.Max {
		return nil, n
	}
	if s.used == nil {
		s.used = make(map[netip.Addr]int)
	}
	s.used[a] = n + 1
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.used[a]--; s.used[a] <= 0 {
			delete(s.used, a)
		}
	}, n
}

// remoteAddr is c's peer address; the zero Addr (one shared count) when
// it has none, as on a Unix socket.
func remoteAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// counted is a connection that gives its place back when closed.
type counted struct {
	net.Conn
	release func()
}

func (c *counted) Close() error {
	c.release()
	return c.Conn.Close()
}

// CloseWrite passes a half close on, for net/http and io.Copy.
func (c *counted) CloseWrite() error { return closeWrite(c.Conn) }

// ReadFrom keeps the connection's own ReadFrom (sendfile for a file:
// net/http serves files through it) in reach.
func (c *counted) ReadFrom(r io.Reader) (int64, error) { return copyTo(c.Conn, r) }

// Unwrap returns the connection underneath.
func (c *counted) Unwrap() net.Conn { return c.Conn }
