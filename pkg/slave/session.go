package slave

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/hashicorp/yamux"
)

const (
	dialTimeout   = 15 * time.Second // TCP + TLS handshake
	helloTimeout  = 30 * time.Second // for the HelloReply
	headerTimeout = 30 * time.Second // for the first frame of a master stream
	drainTimeout  = 30 * time.Second // reading what a refused stream still sends
	attachTimeout = 10 * time.Second // keeps stdin streams nobody expects
	defaultPing   = 30 * time.Second // if the master announces no interval
)

// session is one connection to a master.
type session struct {
	*slave
	node   int    // as the master knows this node
	master string // host:port
	// secondary: this node's primary master is another; this one only
	// sees it (masters.go) and every stream it opens is refused.
	secondary bool
	mux       *yamux.Session
	attach    *link.Rendezvous
}

// session dials master i of Config.Masters and serves it until the
// connection ends; accepted reports whether the master accepted the
// hello. Master 0's session is the primary one: it carries the node's
// jobs and its clients, and its end kills them. Any other is secondary
// and only answers the heartbeat (masters.go).
func (s *slave) session(ctx context.Context, i int) (accepted bool, err error) {
	master, secondary := s.cfg.Masters[i], i > 0
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	mux, err := link.Dial(dctx, s.cfg.Dialer, master, s.cfg.Keys)
	cancel()
	if err != nil {
		return false, fmt.Errorf("node %d: dial master %s: %w", s.cfg.Node, master, err)
	}
	defer mux.Close()
	stop := context.AfterFunc(ctx, func() { mux.Close() })
	defer stop()

	hello, reply, err := s.hello(mux, secondary)
	if err != nil {
		return false, err
	}
	ss := &session{slave: s, node: reply.Node, master: master, secondary: secondary, mux: mux,
		attach: link.NewRendezvous(attachTimeout, link.WriteTimeout)}
	defer ss.attach.Close()
	if secondary {
		s.seen.Add(1)
		defer s.seen.Add(-1)
		s.log.Info("connected to a secondary master", "node", ss.node, "master", master)
	} else {
		s.interval.Store(int64(reply.PingInterval))
		s.spreadPIDs(reply.Node) // before any job of this session starts
		s.cur.Store(ss)          // clients on the node are relayed on it (clients.go)
		defer s.cur.CompareAndSwap(ss, nil)
		s.log.Info("connected to master", "node", ss.node, "master", master, "ping", reply.PingInterval)
		if s.cfg.Connected != nil {
			s.cfg.Connected(ss.node)
		}
	}

	beat := make(chan error, 1)
	go func() {
		err := ss.heartbeat(hello, reply.PingInterval)
		mux.Close() // ends the accept loop below
		beat <- err
	}()
	for {
		st, err := mux.AcceptStream()
		if err != nil {
			break
		}
		s.work.Add(1)
		go func() {
			defer s.work.Done()
			ss.serve(st)
		}()
	}
	mux.Close()
	err = <-beat
	if secondary {
		return true, err
	}
	why := fmt.Sprint(err)
	if ctx.Err() != nil {
		why = "bpslave stopping"
	}
	s.killJobs(why) // no job outlives its master (orphans.go)
	return true, err
}

// hello introduces this node (as a secondary: its primary master is
// another) and returns the hello stream and the master's answer.
func (s *slave) hello(mux *yamux.Session, secondary bool) (net.Conn, wire.HelloReply, error) {
	var reply wire.HelloReply
	st, err := mux.OpenStream()
	if err != nil {
		return nil, reply, fmt.Errorf("node %d: open hello stream: %w", s.cfg.Node, err)
	}
	host, _ := os.Hostname()
	h := wire.Header{Op: wire.OpHello, Hello: &wire.Hello{
		Version: wire.Version, Build: s.cfg.Build, Node: s.cfg.Node, MACs: macs(), Hostname: host, Secondary: secondary,
	}}
	st.SetDeadline(time.Now().Add(helloTimeout))
	if err := wire.Write(st, h); err != nil {
		return nil, reply, fmt.Errorf("node %d: send hello: %w", s.cfg.Node, err)
	}
	if err := wire.Read(st, &reply); err != nil {
		return nil, reply, fmt.Errorf("node %d: read hello reply: %w", s.cfg.Node, err)
	}
	if reply.Err != "" {
		return nil, reply, fmt.Errorf("node %d: master refused this node: %s", s.cfg.Node, reply.Err)
	}
	st.SetDeadline(time.Time{})
	return st, reply, nil
}

// heartbeat answers the master's pings until the hello stream ends or
// three intervals pass without one.
func (ss *session) heartbeat(st net.Conn, interval time.Duration) error {
	if interval <= 0 {
		interval = defaultPing
	}
	limit := 3 * interval
	for {
		st.SetReadDeadline(time.Now().Add(limit))
		var p wire.Ping
		if err := wire.Read(st, &p); err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				return fmt.Errorf("node %d: no ping from the master for %s", ss.node, limit)
			case errors.Is(err, io.EOF):
				return fmt.Errorf("node %d: master closed the session", ss.node)
			}
			return fmt.Errorf("node %d: hello stream: %w", ss.node, err)
		}
		st.SetWriteDeadline(time.Now().Add(limit))
		//lint:ignore S1016 a Pong answers a Ping; it is not a converted one
		if err := wire.Write(st, wire.Pong{Seq: p.Seq}); err != nil {
			return fmt.Errorf("node %d: pong: %w", ss.node, err)
		}
	}
}

// serve reads a master stream's header and runs its operation.
func (ss *session) serve(st net.Conn) {
	defer func() {
		if p := recover(); p != nil {
			ss.log.Error("stream handler panicked", "node", ss.node, "panic", p, "stack", string(debug.Stack()))
			st.Close()
		}
	}()
	st.SetReadDeadline(time.Now().Add(headerTimeout))
	var h wire.Header
	if err := wire.Read(st, &h); err != nil {
		ss.log.Warn("bad stream header", "node", ss.node, "err", err)
		st.Close()
		return
	}
	st.SetReadDeadline(time.Time{})
	switch {
	case ss.secondary:
		ss.log.Warn("refused a secondary master's stream", "node", ss.node, "master", ss.master, "op", h.Op)
		ss.refuse(st, wire.Errorf(wire.CodePermission, "node %d obeys only its primary master, %s", ss.node, ss.cfg.Masters[0]))
	case h.Op == wire.OpExec && h.Exec != nil:
		ss.exec(st, h.Exec)
	case h.Op == wire.OpAttach && h.Attach != nil && h.Attach.FD == 0: // output streams are the node's to open
		ss.attach.Deliver(h.Attach.ID, st) // the exec owns it now
	case h.Op == wire.OpPut && h.File != nil:
		ss.put(st, h.File)
	case h.Op == wire.OpGet && h.File != nil:
		ss.get(st, h.File)
	case h.Op == wire.OpStage && h.Stage != nil:
		ss.stage(st, h.Stage)
	case h.Op == wire.OpControl && h.Control != nil:
		ss.control(st, h.Control)
	case h.Op == wire.OpCheckpoint && h.Checkpoint != nil:
		ss.checkpoint(st, h.Checkpoint)
	case h.Op == wire.OpMount && h.Mount != nil:
		ss.mount(st, h.Mount)
	default:
		ss.log.Warn("refused stream", "node", ss.node, "op", h.Op)
		ss.refuse(st, wire.Errorf(wire.CodeVersion, "unsupported request %q", h.Op))
	}
}

// refuse answers a stream with the Result of err (failure), closes it
// and reads (and drops) what the master may still be sending, so it never
// blocks on a full window.
func (ss *session) refuse(st net.Conn, err error) {
	st.SetWriteDeadline(time.Now().Add(drainTimeout))
	wire.Write(st, ss.failure(err))
	st.Close()
	drain(st)
}

// drain reads st to its end, for at most drainTimeout.
func drain(st net.Conn) {
	st.SetReadDeadline(time.Now().Add(drainTimeout))
	io.Copy(io.Discard, st)
}

// failure is the Result reporting err: about this node, with its Code
// and paths as the node sees them.
func (ss *session) failure(err error) wire.Result {
	n := ss.node
	return wire.Result{Err: ss.view(err), Code: wire.CodeOf(err), Node: &n}
}

// view is err's message with paths as the node sees them: Root is "/".
func (ss *session) view(err error) string {
	msg := err.Error()
	if ss.cfg.Root == "/" {
		return msg
	}
	return strings.ReplaceAll(msg, ss.cfg.Root+"/", "/")
}

// macs lists this host's hardware addresses, loopback excluded.
func macs() []string {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, i := range ifs {
		if len(i.HardwareAddr) == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		m := i.HardwareAddr.String()
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}
