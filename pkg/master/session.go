package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/hashicorp/yamux"
)

// session is one connected node.
type session struct {
	node  int
	addr  netip.Addr
	mux   *yamux.Session
	hello net.Conn
	once  sync.Once
	done  chan struct{}
	why   string
	lost  bool // ended by the heartbeat: the node stopped answering

	outs link.Outputs // output streams of the execs started on this session, by the master's id
}

func (s *session) close(why string) { s.end(why, false) }

// end closes the session; lost says the node stopped answering (its
// heartbeat), rather than the connection being closed or refused.
func (s *session) end(why string, lost bool) {
	s.once.Do(func() {
		s.why, s.lost = why, lost
		close(s.done)
		s.mux.Close()
	})
}

// downErr is the error of what failed on one of s's streams with err.
// When the session has ended, its end says why the node is gone ("node
// lost (no heartbeat for 21s)") rather than the stream's EOF.
func (s *session) downErr(what string, err error) error {
	select {
	case <-s.done:
		return wire.NodeErrorf(s.node, wire.CodeNodeDown, "%s: node lost (%s)", what, s.why)
	default:
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			return wire.NodeErrorf(s.node, wire.CodeNodeDown, "%s: connection lost", what)
		}
		return wire.NodeErrorf(s.node, wire.CodeNodeDown, "%s: %w", what, err)
	}
}

// open starts a stream to the node with header h.
func (s *session) open(h wire.Header) (net.Conn, error) {
	st, err := s.mux.OpenStream()
	if err != nil {
		return nil, wire.NodeErrorf(s.node, wire.CodeNodeDown, "open %s: %w", h.Op, err)
	}
	if err := wire.Write(st, h); err != nil {
		st.Close()
		return nil, wire.NodeErrorf(s.node, wire.CodeNodeDown, "send %s: %w", h.Op, err)
	}
	return st, nil
}

func (m *Master) nodeConn(ctx context.Context, c net.Conn) {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		c.Close()
		return
	}
	addr := ap.Addr().Unmap()
	m.mu.Lock()
	n, ok := m.byAddr[addr]
	cfg := m.cfg
	m.mu.Unlock()
	if !ok && slices.Contains(cfg.Peers, addr) {
		c.Close() // another master's probe (pkg/boot)
		return
	}
	if !ok {
		m.log.Warn("refused connection: not a configured node address", "addr", addr)
		c.Close()
		return
	}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	mux, key, err := link.Accept(hctx, c, cfg.Keys, m.log.With("node", n, "addr", addr))
	if err != nil {
		m.log.Warn("refused node", "node", n, "addr", addr, "err", err)
		c.Close()
		return
	}
	hello, err := acceptHello(hctx, mux)
	if err != nil {
		m.log.Warn("refused node", "node", n, "err", err)
		mux.Close()
		return
	}
	var h wire.Header
	if err := wire.Read(hello, &h); err != nil || h.Op != wire.OpHello || h.Hello == nil {
		m.log.Warn("refused node: bad hello", "node", n, "err", err)
		mux.Close()
		return
	}
	hello.SetDeadline(time.Time{})
	interval := cfg.PingTimeout / 2
	reply := wire.HelloReply{Node: n, PingInterval: interval}
	switch {
	case h.Hello.Version != wire.Version:
		reply.Err, reply.Code = fmt.Sprintf("protocol version %d, master speaks %d", h.Hello.Version, wire.Version), wire.CodeVersion
	case cfg.Build != "" && h.Hello.Build != cfg.Build:
		reply.Err, reply.Code = fmt.Sprintf("build %s, master runs build %s", h.Hello.Build, cfg.Build), wire.CodeVersion
	case h.Hello.Node >= 0 && h.Hello.Node != n:
		reply.Err = fmt.Sprintf("address %s belongs to node %d, not %d", addr, n, h.Hello.Node)
	case !ourNode(cfg, n):
		reply.Err = fmt.Sprintf("masterorder gives node %d the masters %v, not this one (%s)", n, cfg.Masters(n), cfg.MasterAddr)
	default:
		reply.Err = m.admitKey(n, addr, key)
	}
	if err := wire.Write(hello, reply); err != nil || reply.Err != "" {
		m.log.Warn("refused node", "node", n, "addr", addr, "err", reply.Err)
		if m.pins.noteRefusal(n, m.clock()) {
			m.nodeLog(n, "refused %s: %s", addr, reply.Err)
		}
		time.Sleep(50 * time.Millisecond) // let the reply flush before closing
		mux.Close()
		return
	}
	s := &session{node: n, addr: addr, mux: mux, hello: hello, done: make(chan struct{})}
	m.mu.Lock()
	old := m.sessions[n]
	m.sessions[n] = s
	m.mu.Unlock()
	if old != nil {
		old.close("replaced by a new connection")
	}
	if h.Hello.Secondary {
		// Its primary master set it up and runs its jobs; here it is
		// only seen: up, shown "[up]", refused to everyone (pkg/nodes).
		m.log.Info("node connected; its primary master is another", "node", n, "addr", addr, "host", h.Hello.Hostname)
		m.nodeLog(n, "connected from %s as a secondary: its primary master is another (macs %v, build %s)", addr, h.Hello.MACs, h.Hello.Build)
		m.table.SetSecondary(nodes.System, n, true)
		m.table.SetState(nodes.System, n, nodes.Boot)
		m.table.SetState(nodes.System, n, nodes.Up)
	} else {
		m.log.Info("node connected", "node", n, "addr", addr, "host", h.Hello.Hostname)
		m.nodeLog(n, "connected from %s (macs %v, build %s)", addr, h.Hello.MACs, h.Hello.Build)
		m.table.SetSecondary(nodes.System, n, false) // a secondary session it replaced
		m.table.SetState(nodes.System, n, nodes.Boot)
		go m.nodeUp(ctx, s)
	}
	go m.heartbeat(s, interval)
	go m.serveNodeStreams(s)
	<-s.done
	m.mu.Lock()
	if m.sessions[n] == s {
		delete(m.sessions, n)
		m.mu.Unlock()
		m.nodeDown(n, s.why, s.lost)
	} else {
		m.mu.Unlock()
	}
}

// ourNode reports whether this master is one of node n's masters
// (Config.Masters; every node is ours without a list).
func ourNode(cfg Config, n int) bool {
	if cfg.Masters == nil {
		return true
	}
	order := cfg.Masters(n)
	if len(order) == 0 {
		return true
	}
	self, err := netip.ParseAddr(cfg.MasterAddr)
	return err == nil && slices.Contains(order, self.Unmap())
}

// resetDelay is how long after a lost node's session ended its TCP
// connections are reset (see nodeDown).
const resetDelay = 2 * time.Second

// nodeDown marks n down after its session ended, unless the admin sent it
// to reboot, halt or power off: that state stays until it reports again.
// A node lost (no heartbeat) has the master's TCP connections to it reset
// (Config.ResetConns): nothing from it will ever close them.
func (m *Master) nodeDown(n int, why string, lost bool) {
	if nd, ok := m.table.Get(n); ok {
		switch nd.State {
		case nodes.Reboot, nodes.Halt, nodes.Pwroff:
			m.nodeLog(n, "disconnected (%s): %s", nd.State, why)
			return
		}
	}
	m.log.Info("node down", "node", n, "why", why)
	m.nodeLog(n, "down: %s", why)
	m.table.SetState(nodes.System, n, nodes.Down)
	if reset := m.config().ResetConns; reset != nil && lost {
		if nd, ok := m.table.Get(n); ok && nd.Addr.IsValid() {
			go func(addr netip.Addr) {
				// The node's own streams ended with its session: a bpsh or
				// beorsh on it says so first ("node N: connection lost"),
				// before a launcher sees its own connections reset and
				// takes its helpers down with it.
				time.Sleep(resetDelay)
				if m.connected(n) {
					// Back already (a reboot quicker than our heartbeat
					// noticed it was gone): its new session's connection
					// is among those a reset would end, and the old ones
					// its kernel has answered for.
					return
				}
				k, err := reset(addr)
				if k > 0 || err != nil {
					m.log.Info("connections to a down node reset", "node", n, "addr", addr, "count", k, "err", err)
					m.nodeLog(n, "%d TCP connections of the master's to %s reset (%v)", k, addr, err)
				}
			}(nd.Addr)
		}
	}
}

// connected reports whether node n has a session now.
func (m *Master) connected(n int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.sessions[n]
	return ok
}

func acceptHello(ctx context.Context, mux *yamux.Session) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := mux.AcceptStream()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("hello: %w", r.err)
		}
		dl, _ := ctx.Deadline()
		r.c.SetDeadline(dl)
		return r.c, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("hello: %w", ctx.Err())
	}
}

// serveNodeStreams takes the streams a node opens. All work flows from
// the master to the node; a node may open only two kinds of stream: the
// output of a process the master started there, an OpAttach for FD 1 or
// 2 naming an exec of this session that has not finished, each FD at most
// once (link.Outputs); and the relay of a client on the node (OpClient,
// nodeclients.go). Anything else is refused, closed and logged.
func (m *Master) serveNodeStreams(s *session) {
	for {
		st, err := s.mux.AcceptStream()
		if err != nil {
			return
		}
		go m.nodeStream(s, st)
	}
}

// heartbeat pings every interval; two intervals without a Pong end the
// session. The silence counts only while the master was pinging: a
// tick that comes late (the master's host or process stalled: a VM
// paused, SIGSTOP, swapping) sent no ping meanwhile, so the node is
// given a fresh two intervals from then rather than blamed for the
// master's own silence, which would have ended every node's session
// and job at once.
func (m *Master) heartbeat(s *session, interval time.Duration) {
	pongs := make(chan uint64, 4)
	go func() {
		defer s.close("hello stream closed")
		for {
			var p wire.Pong
			if err := wire.Read(s.hello, &p); err != nil {
				return
			}
			select {
			case pongs <- p.Seq:
			default:
			}
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	var seq uint64
	last := m.clock()
	tick := last
	for {
		select {
		case <-s.done:
			return
		case <-pongs:
			last = m.clock()
			m.pins.spoke(s.node, last)
		case <-t.C:
			now := m.clock()
			if now.Sub(tick) > 3*interval/2 && now.Sub(last) > 2*interval {
				m.log.Warn("heartbeat: the master was stalled; the node gets a fresh timeout", "node", s.node, "stalled", now.Sub(tick).Round(time.Second))
				last = now
			}
			tick = now
			if now.Sub(last) > 2*interval {
				s.end(fmt.Sprintf("no heartbeat for %s", now.Sub(last).Round(time.Second)), true)
				return
			}
			seq++
			if err := wire.Write(s.hello, wire.Ping{Seq: seq}); err != nil {
				s.close("ping: " + err.Error())
				return
			}
		}
	}
}

// nodeUp runs the node_up program for s, then the init.d scripts
// (initd.go): all exit 0 → up, else error.
func (m *Master) nodeUp(ctx context.Context, s *session) {
	cfg := m.config()
	n := s.node
	if !m.mountFS(ctx, s, cfg) {
		m.setStateIfCurrent(s, nodes.Error)
		return
	}
	m.stageLibs(s) // while booting: node_up and the first job find them there
	if cfg.NodeUp == "" {
		m.afterNodeUp(ctx, s)
		return
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-cctx.Done():
		}
	}()
	cmd := exec.CommandContext(cctx, cfg.NodeUp, strconv.Itoa(n))
	cmd.Env = append(os.Environ(), "NODE="+strconv.Itoa(n), "BEO_NODE_ADDR="+s.addr.String())
	var out *os.File
	if cfg.LogDir != "" {
		f, err := os.OpenFile(filepath.Join(cfg.LogDir, fmt.Sprintf("node.%d", n)), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err == nil {
			out = f
			defer f.Close()
			cmd.Stdout, cmd.Stderr = f, f
		}
	}
	m.nodeLog(n, "running %s %d", cfg.NodeUp, n)
	err := cmd.Run()
	if out != nil {
		out.Sync()
	}
	if err != nil {
		m.log.Warn("node_up failed", "node", n, "err", err)
		m.nodeLog(n, "node_up failed: %v", err)
		m.setStateIfCurrent(s, nodes.Error)
		return
	}
	m.nodeLog(n, "node_up done")
	m.afterNodeUp(ctx, s)
}

// setStateIfCurrent moves s's node to st if s is still its session.
func (m *Master) setStateIfCurrent(s *session, st nodes.State) {
	m.mu.Lock()
	cur := m.sessions[s.node] == s
	m.mu.Unlock()
	if !cur {
		return
	}
	if err := m.table.SetState(nodes.System, s.node, st); err != nil {
		m.log.Warn("state change", "node", s.node, "err", err)
		return
	}
	m.log.Info("node state", "node", s.node, "state", st)
}

func (m *Master) session(n int) (*session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[n]
	if s == nil {
		return nil, wire.NodeErrorf(n, wire.CodeNodeDown, "not connected")
	}
	return s, nil
}
