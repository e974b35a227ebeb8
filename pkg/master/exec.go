package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/elfdeps"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/wire"
)

// attachTimeout bounds how long client stdin streams nobody expects are
// kept (an exec waits for its own up to link.WriteTimeout), how long a
// node has to send the header of a stream it opens, and how long an exec
// waits, after the Result, for the output streams the Result names.
const attachTimeout = 10 * time.Second

// relay is one remote process in flight.
type relay struct {
	id    uint64
	proc  wire.Proc
	node  net.Conn // exec stream to the slave
	wmu   sync.Mutex
	owner uint32
	reals map[string]string  // content hash → file to read it from
	kids  map[int]*wire.Proc // node-side children (ghosts.go); under Master.mu
}

func (r *relay) signal(sig int) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	return wire.Write(r.node, wire.Signal{Sig: sig})
}

// exec runs a client's process on its node and relays it to the end; c
// is the client's connection, cl the stream of this exec on it.
// The client's stdin stream (unless NoIO or NoStdin) comes on the same
// connection under the id the client chose (ex.ID), through att; towards
// the node the master uses its own id, opening the node's exec stream and
// its stdin stream at once, so neither hop waits for a reply before the
// process can start. Output flows the other way and is opened by the side
// that has it, only when it comes: the node opens a stdout or stderr
// stream to the master (session.go), and that opens the matching stream
// to the client (OpAttach with the client's id), the two spliced with the
// windows of both as back-pressure. Each Result names the streams its
// sender opened (wire.Result.Opened), and the master relays everything
// the node's carry, and closes the client's, before it forwards it.
func (m *Master) exec(ctx context.Context, c *client, cl net.Conn, ex wire.Exec) {
	defer cl.Close()
	who, att := c.who, c.att
	cid := ex.ID
	stdin := !ex.NoIO && !ex.NoStdin
	if stdin && !att.Expect(cid) {
		wire.Write(cl, wire.Result{Err: fmt.Sprintf("node %d: exec id %d is already in use", ex.Node, cid)})
		return
	}
	fail := func(err error) {
		if stdin {
			att.Abandon(cid)
		}
		wire.Write(cl, wire.Result{Err: err.Error()})
	}
	id := m.nextID.Add(1)
	r, files, err := m.prepare(ctx, who, c.memo, id, ex)
	if err != nil {
		fail(err)
		return
	}
	defer m.jobs.start(ex.Node, who.cred.UID)()
	s, err := m.session(ex.Node)
	if err != nil {
		fail(err)
		return
	}
	ex.ID, ex.Cred, ex.Files, ex.Ghost = id, who.wire(), files, who.pid
	var out *link.Output
	var opened atomic.Uint32 // the client streams opened: wire.Result.Opened
	if !ex.NoIO {
		// Before the node can know the id.
		out = s.outs.Expect(id, func(fd int, nd net.Conn) {
			defer nd.Close()
			o, err := link.OpenOutput(c.mux, cid, fd)
			if err != nil {
				return // the client is gone: the process gets a broken pipe
			}
			opened.Or(uint32(wire.OpenedFD(fd)))
			io.Copy(o, nd)
			o.Close()
		})
		defer s.outs.Finish(id, out, 0, 0, nil) // on every early return
	}
	nd, err := s.open(wire.Header{Op: wire.OpExec, Exec: &ex})
	if err != nil {
		fail(err)
		return
	}
	defer nd.Close()
	r.node = nd
	var in net.Conn
	if stdin {
		if in, err = s.open(wire.Header{Op: wire.OpAttach, Attach: &wire.Attach{ID: id, FD: 0}}); err != nil {
			fail(err)
			return
		}
		defer in.Close() // closing twice is harmless
	}
	sent, err := m.sendFiles(s, nd, r.reals)
	if err != nil {
		fail(err)
		return
	}
	if stdin {
		cin, err := att.Claim(cid)
		if err != nil {
			wire.Write(cl, wire.Result{Err: fmt.Sprintf("node %d: client stdin: %v", ex.Node, err)})
			return
		}
		defer cin.Close()
		go func() { // not waited for (like os/exec with a terminal)
			io.Copy(in, cin)
			in.Close()
		}()
	}
	var st struct {
		wire.Started
		wire.Result
	}
	if err := wire.Read(nd, &st); err != nil {
		wire.Write(cl, wire.Result{Err: fmt.Sprintf("node %d: %v", ex.Node, err)})
		return
	}
	if st.Err != "" {
		wire.Write(cl, st.Result)
		return
	}
	r.proc.PID = st.PID
	r.proc.Started = m.clock()
	m.mu.Lock()
	m.procs[id] = r
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.procs, id)
		m.mu.Unlock()
	}()
	defer m.ghostOf(ctx, c, r)()
	st.Started.Sent = sent
	if err := wire.Write(cl, st.Started); err != nil {
		r.signal(int(syscall.SIGHUP))
	}
	// Signals from the client go to the node; the client going away is a hangup.
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			var sg wire.Signal
			if err := wire.Read(cl, &sg); err != nil {
				select {
				case <-done:
				default:
					r.signal(int(syscall.SIGHUP))
				}
				return
			}
			if resumed(sg) {
				c.resumed.Store(true)
			}
			m.fromClient(r, sg) // a signal, maybe for one process, or a ghost's pid (ghosts.go)
		}
	}()
	var res wire.Result
	if err := m.readResult(nd, cl, r, &res); err != nil { // and the Updates before it (ghosts.go)
		res = wire.Result{Err: fmt.Sprintf("node %d: connection lost while running %s (pid %d)", ex.Node, ex.Path, st.PID)}
		if out != nil {
			s.outs.Finish(id, out, 0, 0, nil)
		}
	} else if out != nil {
		// The streams the Result names were opened before it was
		// written: they are late only by as long as this session's
		// accept loop is behind.
		if err := s.outs.Finish(id, out, res.Opened, attachTimeout, s.done); err != nil && res.Err == "" {
			res = wire.Result{Err: fmt.Sprintf("node %d: %s (pid %d): output lost: %v", ex.Node, ex.Path, st.PID, err)}
		}
	}
	res.Opened = uint8(opened.Load())
	wire.Write(cl, res)
}

// prepare checks the caller may run on the node and resolves the program's
// closure reading files as the caller (remembered per connection: memo).
func (m *Master) prepare(ctx context.Context, who caller, memo *closureMemo, id uint64, ex wire.Exec) (*relay, []wire.FileRef, error) {
	if err := m.mayUse(who, ex.Node); err != nil {
		return nil, nil, err
	}
	if len(ex.Argv) == 0 || ex.Path == "" {
		return nil, nil, fmt.Errorf("node %d: empty command", ex.Node)
	}
	files, reals, err := m.resolve(ctx, who, memo, ex.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("node %d: %s: %w", ex.Node, ex.Path, err)
	}
	r := &relay{id: id, owner: who.cred.UID, reals: reals, proc: wire.Proc{
		Node: ex.Node, Ghost: who.pid, Client: who.pid, UID: who.cred.UID, Argv: ex.Argv,
	}}
	return r, files, nil
}

// syscallAccess checks that the (thread's) fs identity may execute path.
func syscallAccess(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	f.Close()
	if fi.Mode().Perm()&0o111 == 0 {
		return errors.New("permission denied: not executable")
	}
	return nil
}

// closure resolves path's files and their content hashes, and where to
// read each hash from. Each file is sent once under its real path; the
// symlinks the loader follows to reach it travel as Target entries.
func (m *Master) closure(path string) ([]wire.FileRef, map[string]string, error) {
	fs, err := elfdeps.Closure("/", path, elfdeps.Options{Cache: m.ldcache})
	if err != nil {
		return nil, nil, err
	}
	out := make([]wire.FileRef, 0, len(fs))
	reals := make(map[string]string, len(fs))
	links := map[string]bool{}
	for _, f := range fs {
		h, err := m.hasher.Hash(f.Real)
		if err != nil {
			return nil, nil, err
		}
		reals[h] = f.Real
		out = append(out, wire.FileRef{Path: f.Real, Hash: h, Size: f.Size, Mode: uint32(f.Mode.Perm())})
		for _, l := range f.Links {
			if !links[l.Name] {
				links[l.Name] = true
				out = append(out, wire.FileRef{Path: l.Name, Target: l.Target})
			}
		}
	}
	return out, reals, nil
}

// sendFiles answers the slave's Need with the file contents and returns
// how many content bytes it sent. At most MaxSends transfers run at once
// (see Config.MaxSends); the others wait for a turn, or for their node's
// session to end.
func (m *Master) sendFiles(s *session, nd net.Conn, reals map[string]string) (int64, error) {
	var need wire.Need
	if err := wire.Read(nd, &need); err != nil {
		return 0, fmt.Errorf("node %d: exec: %w", s.node, err)
	}
	if len(need.Hashes) == 0 {
		return 0, nil
	}
	for _, h := range need.Hashes {
		if _, ok := reals[h]; !ok {
			return 0, fmt.Errorf("node %d: asked for unknown file %s", s.node, h)
		}
	}
	select {
	case m.sends <- struct{}{}:
		defer func() { <-m.sends }()
	case <-s.done:
		return 0, fmt.Errorf("node %d: session ended before its files were sent", s.node)
	}
	var sent int64
	for _, h := range need.Hashes {
		real := reals[h]
		n, err := m.sendFile(nd, real, h)
		sent += n
		if err != nil {
			return sent, fmt.Errorf("node %d: send %s: %w", s.node, real, err)
		}
	}
	return sent, nil
}

// sendFile writes one FileHeader and the content of path, which must hash
// to hash. Small files come from the blob cache, so a thousand nodes
// asking for libc at once cost one read of it; bigger ones stream from
// the file in large writes.
func (m *Master) sendFile(w io.Writer, path, hash string) (int64, error) {
	if b, ok, err := m.blobs.get(path, hash); err != nil {
		return 0, err
	} else if ok {
		if err := wire.Write(w, wire.FileHeader{Hash: hash, Size: int64(len(b))}); err != nil {
			return 0, err
		}
		var sent int64
		for len(b) > 0 {
			n, err := w.Write(b[:min(len(b), sendChunk)])
			sent += int64(n)
			if err != nil {
				return sent, err
			}
			b = b[n:]
		}
		return sent, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return 0, err
	}
	if err := wire.Write(w, wire.FileHeader{Hash: hash, Size: fi.Size()}); err != nil {
		return 0, err
	}
	buf := make([]byte, sendChunk)
	n, err := io.CopyBuffer(w, io.LimitReader(fh, fi.Size()), buf)
	if err == nil && n != fi.Size() {
		err = fmt.Errorf("file shrank while sending (%d of %d bytes)", n, fi.Size())
	}
	return n, err
}

func (m *Master) procList() wire.Procs {
	m.mu.Lock()
	defer m.mu.Unlock()
	return wire.Procs{Procs: m.procsLocked()}
}

// kill signals a remote process: by (node, pid), or the process of a
// ghost, or every process of a client (ghosts.go).
func (m *Master) kill(who caller, k wire.Kill) error {
	hit := m.targets(k)
	if len(hit) == 0 {
		if k.Ghost != 0 {
			return fmt.Errorf("no remote process for pid %d", k.Ghost)
		}
		return fmt.Errorf("node %d: no such process %d", k.Node, k.PID)
	}
	for _, t := range hit {
		if who.cred.UID != 0 && who.cred.UID != t.r.owner {
			return fmt.Errorf("node %d: pid %d: operation not permitted", t.proc.Node, t.proc.PID)
		}
	}
	for _, t := range hit {
		if err := t.send(k); err != nil {
			return err
		}
	}
	return nil
}

// mayUse applies the node permission rules to a caller.
func (m *Master) mayUse(who caller, n int) error {
	nd, ok := m.table.Get(n)
	if !ok {
		return fmt.Errorf("node %d: no such node", n)
	}
	return nd.CanRun(who.cred)
}
