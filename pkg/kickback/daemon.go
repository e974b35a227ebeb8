package kickback

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/accept"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/nss"
)

// Config configures the daemon.
type Config struct {
	// Cluster returns the current config (the master swaps it on reload).
	Cluster func() *config.Config
	// Master is the master's cluster address: the names master and .-1.
	Master netip.Addr
	// UsesUID reports whether node has a job of uid starting or running;
	// nil refuses every user request.
	UsesUID func(node int, uid uint32) bool
	// Users looks users up; nil = Getent{} (the master's own NSS).
	Users Directory
	Log   *slog.Logger
	// Idle closes a connection silent this long (default 2 minutes).
	Idle time.Duration
}

// Daemon is kickbackdaemon.
type Daemon struct {
	cfg Config

	mu     sync.Mutex
	cached *config.Config // the config names was built from
	names  nss.Data
}

// maxConns bounds the connections served at once; maxPerAddr those
// from one address. A node's proxy asks one question per connection,
// rarely two at once, and each connection may stay idle for
// Config.Idle: with the per-address bound, a user on a node who holds
// connections open takes that node's places, not every node's names.
const (
	maxConns   = 512
	maxPerAddr = 16
)

// New checks cfg and returns a daemon.
func New(cfg Config) (*Daemon, error) {
	if cfg.Cluster == nil {
		return nil, errors.New("kickback: no cluster config")
	}
	if cfg.Users == nil {
		cfg.Users = Getent{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 2 * time.Minute
	}
	return &Daemon{cfg: cfg}, nil
}

// Names returns the name data of the current config, rebuilt when the
// config changed.
func (d *Daemon) Names() nss.Data {
	c := d.cfg.Cluster()
	d.mu.Lock()
	defer d.mu.Unlock()
	if c != d.cached {
		d.names, d.cached = nss.FromConfig(c, d.cfg.Master), c
	}
	return d.names
}

// Serve answers connections from ln until ctx ends; it closes ln.
func (d *Daemon) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, maxConns)
	ln = accept.PerAddr(ln, maxPerAddr, d.cfg.Log, "kickback")
	return accept.Loop(ctx, ln, d.cfg.Log, "kickback", func(c net.Conn) {
		select {
		case sem <- struct{}{}:
		default:
			d.cfg.Log.Warn("kickback: too many connections", "peer", c.RemoteAddr())
			c.Close()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d.serveConn(ctx, c)
		}()
	})
}

func (d *Daemon) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	peer := addrOf(c.RemoteAddr())
	node, isNode := d.cfg.Cluster().NodeByAddr(peer)
	log := d.cfg.Log.With("peer", peer)
	if isNode {
		log = log.With("node", node)
	}
	r := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(d.cfg.Idle))
		q, err := ReadRequest(r)
		if err != nil {
			if !isClosed(err) {
				log.Warn("kickback: bad request", "err", err)
				write(c, Reply{V: Version, Err: err.Error()})
			}
			return
		}
		rep := d.answer(ctx, q, peer, node, isNode, log)
		c.SetWriteDeadline(time.Now().Add(d.cfg.Idle))
		if err := write(c, rep); err != nil {
			return
		}
	}
}

func (d *Daemon) answer(ctx context.Context, q Request, peer netip.Addr, node int, isNode bool, log *slog.Logger) Reply {
	switch q.Op {
	case OpNames:
		n := d.Names()
		return Reply{V: Version, Names: &n}
	case OpUser:
		if !isNode {
			log.Warn("kickback: user request refused: not a node", "uid", q.UID)
			return Reply{V: Version, Err: fmt.Sprintf("%s is not a node: no user data", peer)}
		}
		if d.cfg.UsesUID == nil || !d.cfg.UsesUID(node, q.UID) {
			log.Warn("kickback: user request refused: no such job", "uid", q.UID)
			return Reply{V: Version, Err: fmt.Sprintf("node %d has no job of uid %d", node, q.UID)}
		}
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		u, gs, err := d.cfg.Users.LookupUID(lctx, q.UID)
		if err != nil {
			log.Warn("kickback: user lookup", "uid", q.UID, "err", err)
			return Reply{V: Version, Err: fmt.Sprintf("uid %d: %v", q.UID, err)}
		}
		log.Info("kickback: user entries sent", "uid", q.UID, "user", u.Name)
		return Reply{V: Version, User: &u, Groups: gs}
	}
	return Reply{V: Version, Err: "unknown op"}
}

func addrOf(a net.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

func isClosed(err error) bool {
	var ne net.Error
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || (errors.As(err, &ne) && ne.Timeout())
}
