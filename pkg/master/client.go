package master

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beo-cluster/beo/pkg/accept"
	"github.com/beo-cluster/beo/pkg/creds"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/nodespec"
	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/hashicorp/yamux"
)

// caller is a local client as the kernel reports it, or a client on a
// node as that node reports it (nodeclients.go).
type caller struct {
	pid  int // on the master; 0 for a client on a node
	cred wire.Cred
	// remote: the client runs on node node (relayed by its bpslave,
	// OpClient); its pid there is nodePID.
	remote  bool
	node    int
	nodePID int
}

// fromClient is what a client may ask of an exec: the master sets the
// rest itself — the identity it runs as (Cred), the files it takes
// (Files), the client's pid (Ghost) — or the node takes it from the
// master alone: Restore, which has bpslave run a checkpoint tool as
// root (a client's Restore ran any program as root on the node).
func fromClient(in wire.Exec) wire.Exec {
	return wire.Exec{
		Version: in.Version, ID: in.ID, Node: in.Node,
		Path: in.Path, Argv: in.Argv, Env: in.Env, Dir: in.Dir, Rlim: in.Rlim,
		NoIO: in.NoIO, NoStdin: in.NoStdin, Stdin: in.Stdin, Stdout: in.Stdout, Stderr: in.Stderr,
		Fork: in.Fork,
	}
}

// where is the node the caller runs on: -1 for the master.
func (c caller) where() int {
	if c.remote {
		return c.node
	}
	return -1
}

// ServeClients serves local clients on the unix listener ln until ctx
// ends. No error a client can cause ends it (pkg/accept); each non-root
// uid holds at most ConnsPerUID connections at once, and a connection
// that opens no stream within FirstRequest is closed.
func (m *Master) ServeClients(ctx context.Context, ln net.Listener) error {
	if a, ok := ln.Addr().(*net.UnixAddr); ok && a.Name != "" {
		m.socket.Store(&a.Name)
	}
	return accept.Loop(ctx, ln, m.log, "clients", func(c net.Conn) { go m.clientConn(ctx, c) })
}

func peer(c net.Conn) (caller, error) {
	cred, pid, err := creds.Peer(c)
	return caller{pid: pid, cred: cred}, err
}

func (m *Master) clientConn(ctx context.Context, c net.Conn) {
	who, err := peer(c)
	if err != nil {
		m.log.Warn("client refused", "err", err)
		c.Close()
		return
	}
	m.serveClient(ctx, who, c)
}

// serveClient serves one client connection c of caller who: a local
// one (clientConn) or one relayed by a node (nodeClient).
func (m *Master) serveClient(ctx context.Context, who caller, c net.Conn) {
	uid := who.cred.UID
	limit, ok := m.conns.take(uid)
	if !ok {
		m.log.Warn("client refused: too many connections", "uid", uid, "client_pid", who.pid, "limit", limit)
		refuse(c, tooMany(uid, limit))
		return
	}
	defer m.conns.release(uid)
	mux, err := yamux.Server(link.Coalesce(c), link.MuxConfigLogged(m.log.With(who.logAttrs()...)))
	if err != nil {
		c.Close()
		return
	}
	defer mux.Close()
	// A connection that asks nothing is closed: held idle by the
	// thousand, they were the attack.
	idle := time.AfterFunc(FirstRequest, func() { mux.Close() })
	defer idle.Stop()
	cl := &client{who: who, mux: mux,
		att:   link.NewRendezvous(attachTimeout, link.WriteTimeout),
		memo:  &closureMemo{},
		procs: map[uint64]*relay{},
	}
	defer cl.att.Close()
	ctx, cancel := context.WithCancel(ctx) // ends followStops
	defer cancel()
	for {
		st, err := mux.AcceptStream()
		if err != nil {
			return
		}
		idle.Stop()
		go m.clientStream(ctx, cl, st)
	}
}

// client is one client connection: its caller, and what the master
// keeps for it while it lasts.
type client struct {
	who  caller
	mux  *yamux.Session
	att  *link.Rendezvous // its stdin streams
	memo *closureMemo     // its programs' closures

	mu       sync.Mutex
	procs    map[uint64]*relay // its remote processes
	watching bool              // followStops runs
	resumed  atomic.Bool       // it forwarded a SIGCONT: it may stop anew
}

func (m *Master) clientStream(ctx context.Context, cl *client, st net.Conn) {
	who := cl.who
	var h wire.Header
	// A request is read whole within FirstRequest, and a user's requests
	// being read share one budget (limits.go): streams that announce
	// large frames and stall cannot take the master's memory.
	st.SetReadDeadline(time.Now().Add(FirstRequest))
	if err := wire.ReadWithin(st, &h, m.conns.budget(who.cred.UID)); err != nil {
		m.log.Warn("client: bad header", "client_pid", who.pid, "uid", who.cred.UID, "err", err)
		st.Close()
		return
	}
	st.SetReadDeadline(time.Time{})
	switch h.Op {
	case wire.OpStatus:
		wire.Write(st, m.status())
	case wire.OpWhere:
		wire.Write(st, wire.Where{Node: who.where(), Forked: m.takeForked(who)})
	case wire.OpStates:
		wire.Write(st, m.states())
	case wire.OpWatch:
		m.watch(ctx, st)
	case wire.OpProcs:
		wire.Write(st, m.procList())
	case wire.OpRun:
		if h.Exec == nil {
			break
		}
		if v := h.Exec.Version; v != wire.Version {
			wire.Write(st, skew("this client speaks beo wire version %s, bpmaster %d: use the bpsh/bproc of the master's build", clientVersion(v), wire.Version))
			break
		}
		ex := fromClient(*h.Exec)
		if ex.Node == nodespec.Master {
			if !who.remote { // bproc runs a local caller's -1 itself, as the caller
				wire.Write(st, wire.Fail(wire.NodeErrorf(ex.Node, wire.CodeInvalid, "a client on the master runs its node -1 processes itself")))
				break
			}
			m.localExec(ctx, cl, st, ex) // local.go
			return
		}
		m.exec(ctx, cl, st, ex)
		return // exec closes st itself
	case wire.OpExec: // a client of wire Version 3 or older
		wire.Write(st, skew("%s", wire.ClientTooOld))
	case wire.OpAttach:
		if h.Attach != nil && h.Attach.FD == 0 { // output streams are the master's to open
			cl.att.Deliver(h.Attach.ID, st)
			return // owned by the exec now
		}
	case wire.OpKill:
		if h.Kill != nil {
			wire.Write(st, result(m.kill(who, *h.Kill)))
		}
	case wire.OpControl:
		if h.Control != nil {
			wire.Write(st, result(m.control(ctx, who, *h.Control)))
		}
	case wire.OpMove:
		if h.Move != nil {
			m.move(ctx, who, st, *h.Move) // move.go
		}
	case wire.OpReload:
		wire.Write(st, result(m.reload(who)))
	case wire.OpLib:
		if h.Lib != nil {
			paths, err := m.lib(who, *h.Lib)
			l := wire.LibList{Paths: paths}
			if err != nil {
				l.Err, l.Code = err.Error(), wire.CodeOf(err)
			}
			wire.Write(st, l)
		}
	case wire.OpPut, wire.OpGet:
		if h.File != nil && h.File.Node == nodespec.Master {
			m.localFile(ctx, who, st, h.Op, *h.File) // local.go
		} else if h.File != nil {
			m.file(ctx, who, st, h.Op, *h.File)
		}
	default:
		wire.Write(st, skew("unknown op %q", h.Op))
	}
	st.Close()
}

// skew answers a request this master does not speak: CodeVersion, with
// its own Version, so the client can tell which side is older.
func skew(format string, a ...any) wire.Result {
	return wire.Result{Err: fmt.Sprintf(format, a...), Code: wire.CodeVersion, Version: wire.Version}
}

// clientVersion names the Version an exec request says (none: 4 or older).
func clientVersion(v int) string {
	if v == 0 {
		return "4 or older"
	}
	return strconv.Itoa(v)
}

// result is the Result reporting err (wire.Fail), or success.
func result(err error) wire.Result {
	if err != nil {
		return wire.Fail(err)
	}
	return wire.Result{}
}

// names resolves uids and gids to names once each per use: os/user reads
// /etc/passwd and /etc/group on every lookup, which at a thousand nodes
// made a status request take as long as the exec it was for.
type names struct{ users, groups map[uint32]string }

func newNames() names { return names{users: map[uint32]string{}, groups: map[uint32]string{}} }

func (c names) user(uid uint32) string {
	if n, ok := c.users[uid]; ok {
		return n
	}
	n := strconv.Itoa(int(uid))
	if u, err := user.LookupId(n); err == nil {
		n = u.Username
	}
	c.users[uid] = n
	return n
}

func (c names) group(gid uint32) string {
	if n, ok := c.groups[gid]; ok {
		return n
	}
	n := strconv.Itoa(int(gid))
	if g, err := user.LookupGroupId(n); err == nil {
		n = g.Name
	}
	c.groups[gid] = n
	return n
}

func (m *Master) info(n nodes.Node, nm names) wire.NodeInfo {
	i := wire.NodeInfo{
		Node: n.Num, State: n.Display(), MACs: n.MACs,
		Mode: uint32(n.Mode.Perm()), UID: n.Owner, GID: n.Group,
		User: nm.user(n.Owner), Group: nm.group(n.Group), Since: n.Since,
	}
	if n.Addr.IsValid() {
		i.Addr = n.Addr.String()
	}
	return i
}

func (m *Master) status() wire.Status {
	all := m.table.All()
	nm := newNames()
	cfg := m.config()
	s := wire.Status{MasterAddr: cfg.MasterAddr, Nodes: make([]wire.NodeInfo, 0, len(all)),
		Master: &wire.MasterInfo{PID: os.Getpid(), Build: cfg.Build, Config: cfg.ConfigPath, Started: m.started}}
	for _, n := range all {
		s.Nodes = append(s.Nodes, m.info(n, nm))
	}
	return s
}

func (m *Master) states() wire.States {
	all := m.table.All()
	s := wire.States{States: make([]string, 0, len(all))}
	for _, n := range all {
		for len(s.States) < n.Num { // numbering gaps (none today) read as unknown
			s.States = append(s.States, "")
		}
		s.States = append(s.States, n.Display())
	}
	return s
}

func (m *Master) watch(ctx context.Context, st net.Conn) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := m.table.Watch(wctx)
	if err := wire.Write(st, m.status()); err != nil {
		return
	}
	go func() { // the client closing its side ends the watch
		var b [1]byte
		st.Read(b[:])
		cancel()
	}()
	for c := range ch {
		if err := wire.Write(st, m.info(c.New, newNames())); err != nil {
			return
		}
	}
}
