// Package bproc is the Go API to the beo process space — the libbproc of
// this project. Every client command (bpsh, bpcp, bpctl, bpstat, bplib,
// beostat) is built on it, and programs can use it directly:
//
//	c, err := bproc.Dial(ctx, "")          // the master's unix socket
//	cmd := c.Command(3, "/bin/date")      // shaped like os/exec
//	cmd.Stdout = os.Stdout
//	err = cmd.Run()
//
// A Client is one yamux session over the master's unix socket (see
// pkg/wire for the messages). The master opens a process's stdout and
// stderr streams towards the client only when output comes; the client
// accepts those, for processes it started and only once each, and
// refuses any other stream. The master knows who is calling from the
// socket's peer credentials, so nothing here claims an identity.
//
// Node -1 is the master itself: Command(-1, …) on the master runs locally
// with os/exec, as BProc did, so callers need not special-case it. On a
// node (the socket is the node's bpslave, which relays the connection to
// the master with the caller's identity: Client.Where says which node)
// it runs on the master, through it, as the caller; and a program the
// node has no copy of is looked up on the master's PATH.
//
// A process on a node moves itself with Move, forks a copy of itself
// onto another node with Rfork and becomes a program run on a node with
// Execmove — libbproc's bproc_move, bproc_rfork and bproc_execmove
// (move.go, fork.go); Client.Move and MoveGhost move another process.
//
// What it takes and returns are its own types (Status, NodeInfo, Proc,
// File, Control, Rlimit; the errors NodeError, Error, ExitError),
// converted from and to pkg/wire's messages here: the protocol is this
// package's business, and the commands never import it. A failure the
// master or a node reports keeps its node and Code as fields, so a
// command prints "3: permission denied" from them.
package bproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/beo-cluster/beo/pkg/ghost"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/hashicorp/yamux"
)

// DefaultSocket is where bpmaster listens for local clients.
const DefaultSocket = "/run/beowulf/bpmaster.sock"

// SocketEnv overrides DefaultSocket (the simulated cluster sets it).
const SocketEnv = "BEO_SOCKET"

// ErrNoMaster is returned when no master answers on the socket.
var ErrNoMaster = errors.New("bpmaster is not running")

// Client is a connection to the local bpmaster.
type Client struct {
	sess   *yamux.Session
	nextID atomic.Uint64 // exec ids on this connection
	outs   link.Outputs  // the output streams the master opens, by exec id
	// outputWait bounds how long Wait waits, after the Result, for an
	// output stream it names, and the header of any stream the master
	// opens: both were written before the Result, so they are late only
	// by as long as this process is behind in reading its session.
	outputWait time.Duration
	refused    atomic.Pointer[RefusedError] // set when the master refused this connection
	noMaster   atomic.Pointer[string]       // set when a node's bpslave refused it: no master
	where      atomic.Pointer[int]          // Where's answer, once asked
	spawner    ghost.Spawner                // the ghosts of its processes (ghosts.go)
	noGhosts   atomic.Bool
	running    atomic.Int64 // commands with ghosts arranged, not yet waited for
	kidGhosts  atomic.Int64 // live ghosts of node-side children, all commands (maxKidGhosts)
}

// RefusedError is the master's refusal to serve a connection: the
// caller's uid holds too many connections already.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "bpmaster refused the connection: " + e.Reason }

// fail returns the master's refusal in place of err (the session error
// the refusal caused) when there was one.
func (c *Client) fail(err error) error {
	if r := c.refused.Load(); r != nil {
		return r
	}
	if r := c.noMaster.Load(); r != nil {
		return fmt.Errorf("%w: %s", ErrNoMaster, *r)
	}
	return err
}

// Where returns the node this client runs on: -1 on the master, N on
// node N, where the node's bpslave relays it to the master (asked once
// per Client). Node -1 means the master from anywhere: Command(-1) runs
// locally on the master and there through the master from a node.
func (c *Client) Where(ctx context.Context) (int, error) {
	if w := c.where.Load(); w != nil {
		return *w, nil
	}
	var w wire.Where
	if err := c.call(ctx, wire.Header{Op: wire.OpWhere}, &w); err != nil {
		return 0, err
	}
	n := w.Node
	if w.Err != "" {
		n = -1 // a master that does not know the op serves no node clients
	}
	c.where.Store(&n)
	return n, nil
}

// ErrMasterTooOld and ErrClientTooOld are what errors.Is finds in a
// failure because bpmaster speaks another wire Version than this client
// (wire.CodeVersion): it runs an older build, or a newer one.
var (
	ErrMasterTooOld = errors.New("bpmaster speaks an older beo protocol than this client: restart bpmaster from this build")
	ErrClientTooOld = errors.New("this client speaks an older beo protocol than bpmaster: use the bpsh/bproc of the master's build")
)

// SocketPath returns the socket a client uses: path if set, else
// $BEO_SOCKET, else DefaultSocket.
func SocketPath(path string) string {
	if path != "" {
		return path
	}
	if p := os.Getenv(SocketEnv); p != "" {
		return p
	}
	return DefaultSocket
}

// Dial connects to bpmaster's unix socket (see SocketPath).
func Dial(ctx context.Context, path string) (*Client, error) {
	c, _, err := dial(ctx, path)
	return c, err
}

// dial is Dial, also returning the connection under the client.
func dial(ctx context.Context, path string) (*Client, net.Conn, error) {
	path = SocketPath(path)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (%s): %w", ErrNoMaster, path, err)
	}
	c, err := NewClient(conn)
	if err != nil {
		return nil, nil, fmt.Errorf("session with %s: %w", path, err)
	}
	return c, conn, nil
}

// NewClient is a client on conn, a connection to bpmaster made some
// other way than Dial: the master's own, in-process one (pkg/master),
// which it uses to run programs on a booting node. Close closes conn.
func NewClient(conn net.Conn) (*Client, error) {
	s, err := yamux.Client(link.Coalesce(conn), link.MuxConfig())
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := &Client{sess: s, outputWait: 10 * time.Second}
	go c.serve()
	return c, nil
}

// serve takes the streams the master opens: the output of the processes
// this client started, each handed to its Cmd (link.Outputs); any other
// stream is refused.
func (c *Client) serve() {
	for {
		st, err := c.sess.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			st.SetReadDeadline(time.Now().Add(c.outputWait))
			var h wire.Header
			err := wire.Read(st, &h)
			st.SetReadDeadline(time.Time{})
			if err == nil && h.Op == wire.OpRefuse && h.Refuse != nil {
				if h.Refuse.NoMaster { // the node's bpslave: no master to relay to
					c.noMaster.Store(&h.Refuse.Reason)
				} else {
					c.refused.Store(&RefusedError{Reason: h.Refuse.Reason})
				}
				c.sess.Close() // every call under way fails with the refusal
				return
			}
			c.outs.TakeAfter(st, h, err, c.outputWait, nil) // a refused stream is closed: nothing else to do
		}()
	}
}

// Close ends the session; running commands are signalled SIGHUP-like by
// the master (their streams close).
func (c *Client) Close() error { return c.sess.Close() }

// open starts a stream with header h.
func (c *Client) open(ctx context.Context, h wire.Header) (net.Conn, error) {
	st, err := c.sess.OpenStream()
	if err != nil {
		return nil, c.fail(fmt.Errorf("open %s stream: %w", h.Op, err))
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	if err := wire.Write(st, h); err != nil {
		st.Close()
		return nil, c.fail(fmt.Errorf("send %s: %w", h.Op, err))
	}
	return st, nil
}

// call sends h and reads one reply frame into reply.
func (c *Client) call(ctx context.Context, h wire.Header, reply any) error {
	st, err := c.open(ctx, h)
	if err != nil {
		return err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := wire.Read(st, reply); err != nil {
		return c.fail(fmt.Errorf("%s reply: %w", h.Op, err))
	}
	return nil
}

// Reload asks bpmaster to re-read its config (root only); the error
// names every file:line the config was refused for.
func (c *Client) Reload(ctx context.Context) error {
	return c.result(ctx, wire.Header{Op: wire.OpReload})
}

// Status returns the node table.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s wire.Status
	if err := c.call(ctx, wire.Header{Op: wire.OpStatus}, &s); err != nil {
		return Status{}, err
	}
	return status(s), nil
}

// States returns every node's state, indexed by node number: enough to
// resolve a node spec, and much less than Status on a large cluster.
func (c *Client) States(ctx context.Context) (States, error) {
	var s wire.States
	err := c.call(ctx, wire.Header{Op: wire.OpStates}, &s)
	return s.States, err
}

// States are the node states in node order. They are what a node spec
// (pkg/nodespec) is resolved against: `allup`, `allnotdown`, …
type States []string

// StatesOf returns the states of a full status.
func StatesOf(st Status) States {
	s := make(States, len(st.Nodes))
	for i, n := range st.Nodes {
		s[i] = n.State
	}
	return s
}

// Count is the number of compute nodes.
func (s States) Count() int { return len(s) }

// KnownStates lets nodespec reject a misspelt state (`allupp`).
func (s States) KnownStates() []string { return nodes.StateNames() }

// State is node n's state, "" for a node that does not exist.
func (s States) State(n int) string {
	if n < 0 || n >= len(s) {
		return ""
	}
	return s[n]
}

// Watch returns the node table now and then every change, until ctx ends.
func (c *Client) Watch(ctx context.Context) (Status, <-chan NodeInfo, error) {
	st, err := c.open(ctx, wire.Header{Op: wire.OpWatch})
	if err != nil {
		return Status{}, nil, err
	}
	var s wire.Status
	if err := wire.Read(st, &s); err != nil {
		st.Close()
		return Status{}, nil, fmt.Errorf("watch: %w", err)
	}
	ch := make(chan NodeInfo)
	go func() {
		defer close(ch)
		defer st.Close()
		stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
		defer stop()
		for {
			var n wire.NodeInfo
			if err := wire.Read(st, &n); err != nil {
				return
			}
			select {
			case ch <- nodeInfo(n):
			case <-ctx.Done():
				return
			}
		}
	}()
	return status(s), ch, nil
}

// Procs lists the remote processes the master knows of.
func (c *Client) Procs(ctx context.Context) ([]Proc, error) {
	var p wire.Procs
	if err := c.call(ctx, wire.Header{Op: wire.OpProcs}, &p); err != nil {
		return nil, err
	}
	return procs(p.Procs), nil
}

// Kill sends sig to remote process pid on node.
func (c *Client) Kill(ctx context.Context, node, pid, sig int) error {
	return c.result(ctx, wire.Header{Op: wire.OpKill, Kill: &wire.Kill{Node: node, PID: pid, Sig: sig}})
}

// Control applies bpctl actions to nodes, in order.
func (c *Client) Control(ctx context.Context, ctl Control) error {
	return c.result(ctx, wire.Header{Op: wire.OpControl, Control: ctl.wire()})
}

// Lib adds and deletes entries of the prestaged library list and returns
// the list after the change.
func (c *Client) Lib(ctx context.Context, add, del []string) ([]string, error) {
	var l wire.LibList
	if err := c.call(ctx, wire.Header{Op: wire.OpLib, Lib: &wire.Lib{Add: add, Delete: del}}, &l); err != nil {
		return nil, err
	}
	return l.Paths, remote(wire.Result{Err: l.Err, Code: l.Code})
}

func (c *Client) result(ctx context.Context, h wire.Header) error {
	var r wire.Result
	if err := c.call(ctx, h, &r); err != nil {
		return err
	}
	return remote(r)
}
