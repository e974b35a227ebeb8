package slave

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/beo-cluster/beo/pkg/accept"
	"github.com/beo-cluster/beo/pkg/creds"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/hashicorp/yamux"
)

// Clients on the node.
//
// bpsh, bpstat, bpctl, bpcp and beostat run on a node — by a job, or
// from its console — dial the client socket they would dial on the
// master (bproc.DefaultSocket, $BEO_SOCKET); on a node it is bpslave's,
// Config.ClientSocket (mode 0666: anyone on the node may ask; the master
// decides what they may do). For each connection bpslave takes the
// caller's identity from the node's kernel (SO_PEERCRED, groups from
// /proc: pkg/creds.Peer) and opens a wire.OpClient stream on its session
// with the master carrying it, then splices the two byte for byte: the
// client speaks to the master itself, which serves it as a local client
// of that identity on this node (pkg/master: nodeclients.go). Nothing is
// interpreted here, so every client op works from a node as from the
// master.
//
// A connection that comes while the node has no session with the master
// is refused the way the master refuses one (wire.OpRefuse, with
// NoMaster): the client fails at once, saying the node cannot reach its
// master and why — never serving anything from elsewhere.
//
// Each job's environment gets BEO_SOCKET=ClientSocket (replacing the one
// the caller on the master had, a path there): on a simulated node
// without a view of its own, the socket lives in the node's directory.

// clientsBuffer is the splice buffer of a relayed client connection
// (bpcp's file bytes go through it).
const clientsBuffer = 256 << 10

// refuseLinger bounds how long a refused client is kept for its refusal.
const refuseLinger = 250 * time.Millisecond

// serveClients listens on cfg.ClientSocket and relays each connection
// to the master until ctx ends. A socket it cannot make is logged: the
// node works without clients on it.
func (s *slave) serveClients(ctx context.Context) {
	ln, err := listenClients(s.cfg.ClientSocket)
	if err != nil {
		s.log.Warn("no client socket on this node: bpsh, bpstat, bpcp … will not work here", "err", err)
		return
	}
	s.log.Info("client socket", "path", s.cfg.ClientSocket)
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		accept.Loop(ctx, ln, s.log, "clients", func(c net.Conn) {
			s.work.Add(1)
			go func() {
				defer s.work.Done()
				s.clientConn(ctx, c)
			}()
		})
	}()
}

// listenClients makes the client socket at path, replacing a stale one
// but never one a server answers on (a master's, if bpslave was started
// on the master by mistake).
func listenClients(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s: another server answers there", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// clientConn relays one client connection to the master.
func (s *slave) clientConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	cred, pid, err := creds.Peer(c)
	if err != nil {
		s.log.Warn("client refused", "err", err)
		return
	}
	ss := s.cur.Load()
	if ss == nil {
		why := "not connected yet"
		if e := s.lastErr.Load(); e != nil {
			why = *e
		}
		refuseClient(c, fmt.Sprintf("this node has no connection to bpmaster at %s: %s", s.cfg.Masters[0], why))
		return
	}
	st, err := ss.mux.OpenStream()
	if err == nil {
		st.SetWriteDeadline(time.Now().Add(headerTimeout))
		err = wire.Write(st, wire.Header{Op: wire.OpClient, Client: &wire.Client{Cred: cred, PID: pid}})
		st.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		if st != nil {
			st.Close()
		}
		refuseClient(c, fmt.Sprintf("node %d: relay to bpmaster at %s: %v", ss.node, ss.master, err))
		return
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { c.Close(); st.Close() })
	defer stop()
	// Either side ending ends both: each copy wrote all it read before
	// it returned, so nothing is lost.
	done := make(chan struct{}, 2)
	go func() { io.CopyBuffer(st, c, make([]byte, clientsBuffer)); done <- struct{}{} }()
	go func() { io.CopyBuffer(c, st, make([]byte, clientsBuffer)); done <- struct{}{} }()
	<-done
}

// refuseClient tells a client why it is not served (wire.OpRefuse with
// NoMaster) and closes it once the client has read that, or after
// refuseLinger.
func refuseClient(c net.Conn, reason string) {
	mux, err := yamux.Server(c, link.MuxConfig())
	if err != nil {
		return
	}
	defer mux.Close()
	st, err := mux.OpenStream()
	if err != nil {
		return
	}
	if err := wire.Write(st, wire.Header{Op: wire.OpRefuse, Refuse: &wire.Refuse{Reason: reason, NoMaster: true}}); err != nil {
		return
	}
	t := time.NewTimer(refuseLinger)
	defer t.Stop()
	select {
	case <-mux.CloseChan():
	case <-t.C:
	}
}

// socketEnv is bproc.SocketEnv.
const socketEnv = "BEO_SOCKET"

// jobEnv is the environment a job starts with: the caller's, its
// BEO_SOCKET the node's client socket when there is one, its PATH
// ending in ClientBin (a PATH that is missing or empty is left so).
// Never nil: nil would mean "inherit bpslave's".
func (s *slave) jobEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, e := range env {
		if s.cfg.ClientSocket != "" && strings.HasPrefix(e, socketEnv+"=") {
			continue
		}
		if p, ok := strings.CutPrefix(e, "PATH="); ok && s.cfg.ClientBin != "" && p != "" &&
			!slices.Contains(filepath.SplitList(p), s.cfg.ClientBin) {
			e += string(filepath.ListSeparator) + s.cfg.ClientBin
		}
		out = append(out, e)
	}
	if s.cfg.ClientSocket != "" {
		out = append(out, socketEnv+"="+s.cfg.ClientSocket)
	}
	return out
}
