package master

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// Clients on nodes.
//
// bpsh, bpstat, bpctl, bpcp and programs on pkg/bproc work on a node as
// on the master: the node's bpslave listens on the node's own client
// socket (bproc.DefaultSocket there), takes each caller's identity from
// the node's kernel (SO_PEERCRED, groups from /proc), and relays the
// connection whole on a stream it opens on its session with the master
// (wire.OpClient, carrying that identity). The master serves the stream
// exactly as a connection to its own socket (serveClient), with the
// caller the node reports, marked as on that node: the same permission
// checks, the same per-uid connection limit. What differs:
//
//   - No local pid: the master follows no stops of the caller (a SIGSTOP
//     sent to a bpsh on a node does not reach its remote processes;
//     SIGTSTP, which bpsh forwards, does), its processes' ghost pid is 0,
//     and it cannot read files for it (File.Sources is refused: the
//     caller's files are the node's, so the client sends them itself).
//   - Node -1 is the master for it, not the node (pkg/bproc asks OpWhere
//     before running there): an exec on node -1 runs on the master as the
//     caller (local.go), and bpcp's master:PATH lands there, written as
//     the caller.
//
// Who a node says its caller is, the master takes: the node proved it is
// node N with its pinned key (master.go: Node identity), and its bpslave,
// root on the node, is the authority on who runs there — as BProc, which
// treated a node's processes as the cluster's. So root on a node is root
// for the master as well (bpctl, bplib, running and writing anything on
// the master as root): whoever holds root on a node — or, as master.go
// says, has enrolled as a node while it was down — holds the cluster, as
// under BProc. A site that cannot accept that must not give users root
// on nodes; beo does not squash it, because node_up scripts, admin jobs
// and the issue's own test (`bpsh 0 bpcp f master:/x` as root) rely on it.
func (m *Master) nodeStream(s *session, st net.Conn) {
	st.SetReadDeadline(time.Now().Add(attachTimeout))
	var h wire.Header
	err := wire.Read(st, &h)
	st.SetReadDeadline(time.Time{})
	if err == nil && h.Op == wire.OpClient && h.Client != nil {
		m.nodeClient(s, st, *h.Client)
		return
	}
	s.outs.TakeAfter(st, h, err, attachTimeout, func(err error) {
		m.log.Warn("refused node stream", "node", s.node, "err", err)
	})
}

// nodeClient serves the client connection node s relays on st, until
// either ends.
func (m *Master) nodeClient(s *session, st net.Conn, c wire.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.done: // the session ended: so does every client it relays
			cancel()
		case <-ctx.Done():
		}
	}()
	who := caller{cred: c.Cred, remote: true, node: s.node, nodePID: c.PID}
	m.log.Debug("client on node", who.logAttrs()...)
	m.serveClient(ctx, who, st)
}

// logAttrs names the caller in log lines.
func (c caller) logAttrs() []any {
	if c.remote {
		return []any{"node", c.node, "client_pid", c.nodePID, "uid", c.cred.UID}
	}
	return []any{"client_pid", c.pid, "uid", c.cred.UID}
}

// String names the caller in messages: "uid 1000" or "uid 1000 on node 3".
func (c caller) String() string {
	if c.remote {
		return fmt.Sprintf("uid %d on node %d", c.cred.UID, c.node)
	}
	return fmt.Sprintf("uid %d", c.cred.UID)
}
