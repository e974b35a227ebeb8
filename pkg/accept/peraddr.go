package accept

import (
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
	return &perAddr{Listener: ln, max: max, log: log, what: what, open: make(map[netip.Addr]int)}
}

type perAddr struct {
	net.Listener
	max  int
	log  *slog.Logger
	what string

	mu   sync.Mutex
	open map[netip.Addr]int
}

func (l *perAddr) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		a := remoteAddr(c)
		l.mu.Lock()
		n := l.open[a]
		if n < l.max {
			l.open[a] = n + 1
		}
		l.mu.Unlock()
		if n >= l.max {
			l.log.Warn("refused connection: too many from one address", "listener", l.what, "peer", a, "open", n)
			c.Close()
			continue
		}
		return &counted{Conn: c, release: sync.OnceFunc(func() { l.release(a) })}, nil
	}
}

func (l *perAddr) release(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[a]--; l.open[a] <= 0 {
		delete(l.open, a)
	}
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
func (c *counted) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Unwrap returns the connection underneath.
func (c *counted) Unwrap() net.Conn { return c.Conn }
