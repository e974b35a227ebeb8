package kickback

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/beo-cluster/beo/pkg/accept"
	"github.com/beo-cluster/beo/pkg/nss"
)

// Client asks a kickback daemon, one connection per call.
type Client struct {
	Addr    string // host:port
	Dialer  *net.Dialer
	Timeout time.Duration // per call (default 10 s)
}

func (c *Client) call(ctx context.Context, q Request) (Reply, error) {
	t := c.Timeout
	if t <= 0 {
		t = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	d := c.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return Reply{}, fmt.Errorf("kickback %s: %w", c.Addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	q.V = Version
	if err := write(conn, q); err != nil {
		return Reply{}, fmt.Errorf("kickback %s: %w", c.Addr, err)
	}
	p, err := ReadReply(bufio.NewReader(conn))
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return p, fmt.Errorf("kickback %s: %w", c.Addr, err)
	}
	return p, nil
}

// Names fetches the cluster's name data.
func (c *Client) Names(ctx context.Context) (nss.Data, error) {
	p, err := c.call(ctx, Request{Op: OpNames})
	if err != nil {
		return nss.Data{}, err
	}
	if p.Names == nil {
		return nss.Data{}, fmt.Errorf("kickback %s: reply without names", c.Addr)
	}
	return *p.Names, nil
}

// User fetches uid's passwd entry and groups.
func (c *Client) User(ctx context.Context, uid uint32) (nss.User, []nss.Group, error) {
	p, err := c.call(ctx, Request{Op: OpUser, UID: uid})
	if err != nil {
		return nss.User{}, nil, err
	}
	if p.User == nil || p.User.UID != uid {
		return nss.User{}, nil, fmt.Errorf("kickback %s: reply without uid %d", c.Addr, uid)
	}
	return *p.User, p.Groups, nil
}

// Proxy is kickbackproxy.
type Proxy struct {
	Client Client
	// Root is the filesystem whose etc/ files are written ("/" on a node).
	Root string
	// Refresh is how often names are fetched again (default 60 s); a
	// failed fetch is retried sooner, with backoff.
	Refresh time.Duration
	Log     *slog.Logger

	mu sync.Mutex // serializes file writes
}

func (p *Proxy) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// SyncNames fetches the names once and writes them under Root.
func (p *Proxy) SyncNames(ctx context.Context) error {
	d, err := p.Client.Names(ctx)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	changed, err := nss.WriteFiles(p.root(), d)
	for _, f := range changed {
		p.log().Info("kickback: names written", "file", f, "hosts", len(d.Hosts))
	}
	return err
}

// SyncUser fetches uid's entries and upserts them into Root's etc/passwd
// and etc/group.
func (p *Proxy) SyncUser(ctx context.Context, uid uint32) error {
	u, groups, err := p.Client.User(ctx, uid)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range groups {
		if _, err := nss.UpsertGroup(p.root(), g); err != nil {
			return fmt.Errorf("uid %d: group %s: %w", uid, g.Name, err)
		}
	}
	if _, err := nss.UpsertUser(p.root(), u); err != nil {
		return fmt.Errorf("uid %d: %w", uid, err)
	}
	p.log().Info("kickback: user entries written", "uid", uid, "user", u.Name, "groups", len(groups))
	return nil
}

func (p *Proxy) root() string {
	if p.Root == "" {
		return "/"
	}
	return p.Root
}

// Serve keeps the names fresh and answers local requests on local (nil:
// none, as on a non-Scyld host) until ctx ends.
func (p *Proxy) Serve(ctx context.Context, local net.Listener) error {
	refresh := p.Refresh
	if refresh <= 0 {
		refresh = time.Minute
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if local != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.serveLocal(ctx, local)
		}()
	}
	backoff := 200 * time.Millisecond
	for {
		wait := refresh
		if err := p.SyncNames(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.log().Warn("kickback: names", "err", err)
			wait, backoff = backoff, min(2*backoff, refresh)
		} else {
			backoff = 200 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

func (p *Proxy) serveLocal(ctx context.Context, ln net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	err := accept.Loop(ctx, ln, p.log(), "kickback local", func(c net.Conn) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			q, err := ReadRequest(bufio.NewReader(c))
			if err == nil && q.Op != OpUser {
				err = fmt.Errorf("kickback: local socket: op %q not served", q.Op)
			}
			if err == nil {
				err = p.SyncUser(ctx, q.UID)
			}
			rep := Reply{V: Version}
			if err != nil {
				rep.Err = err.Error()
				p.log().Warn("kickback: local user request", "uid", q.UID, "err", err)
			}
			write(c, rep)
		}()
	})
	if err != nil {
		p.log().Error("kickback: local accept", "err", err)
	}
}

// ListenLocal makes the proxy's unix socket at path, mode 0600 (root
// only), replacing a stale socket file.
func ListenLocal(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Ensure asks the node's proxy at socket to fetch uid's passwd and group
// entries, and returns once they are written (or the proxy's error).
// bpslave calls it before starting a job as uid.
func Ensure(ctx context.Context, socket string, uid uint32) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("kickbackproxy: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := write(c, Request{V: Version, Op: OpUser, UID: uid}); err != nil {
		return fmt.Errorf("kickbackproxy: %w", err)
	}
	if _, err := ReadReply(bufio.NewReader(c)); err != nil {
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		return fmt.Errorf("kickbackproxy: uid %d: %w", uid, err)
	}
	return nil
}
