package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/creds"
	"github.com/beo-cluster/beo/pkg/elfdeps"
	"github.com/beo-cluster/beo/pkg/wire"
)

// attachTimeout bounds how long an exec waits for its client's stdio streams.
const attachTimeout = 10 * time.Second

// ack is the master's first answer to a client exec: the id its stdio
// streams attach to, or why it cannot run.
type ack struct {
	ID  uint64 `json:"id"`
	Err string `json:"err,omitempty"`
}

// relay is one remote process in flight.
type relay struct {
	id    uint64
	proc  wire.Proc
	node  net.Conn // exec stream to the slave
	wmu   sync.Mutex
	owner uint32
	reals map[string]string // content hash → file to read it from
}

func (r *relay) signal(sig int) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	return wire.Write(r.node, wire.Signal{Sig: sig})
}

// exec runs a client's process on its node and relays it to the end.
func (m *Master) exec(ctx context.Context, who caller, cl net.Conn, ex wire.Exec) {
	defer cl.Close()
	id := m.nextID.Add(1)
	r, files, err := m.prepare(who, id, ex)
	if err != nil {
		wire.Write(cl, ack{Err: err.Error()})
		return
	}
	defer m.jobs.start(ex.Node, who.cred.UID)()
	var sl *slot
	if !ex.NoIO {
		sl = m.pending.expect(id, who.pid)
		defer m.pending.forget(id)
	}
	if err := wire.Write(cl, ack{ID: id}); err != nil {
		return
	}
	s, err := m.session(ex.Node)
	if err != nil {
		wire.Write(cl, wire.Result{Err: err.Error()})
		return
	}
	ex.ID, ex.Cred, ex.Files, ex.Ghost = id, who.wire(), files, who.pid
	nd, err := s.open(wire.Header{Op: wire.OpExec, Exec: &ex})
	if err != nil {
		wire.Write(cl, wire.Result{Err: err.Error()})
		return
	}
	defer nd.Close()
	r.node = nd
	sent, err := sendFiles(nd, ex.Node, r.reals)
	if err != nil {
		wire.Write(cl, wire.Result{Err: err.Error()})
		return
	}
	var copies sync.WaitGroup
	if !ex.NoIO {
		streams, err := sl.wait(attachTimeout)
		if err != nil {
			wire.Write(cl, wire.Result{Err: fmt.Sprintf("node %d: %v", ex.Node, err)})
			return
		}
		defer func() {
			for _, c := range streams {
				c.Close()
			}
		}()
		if err := m.spliceStdio(s, id, streams, &copies); err != nil {
			wire.Write(cl, wire.Result{Err: err.Error()})
			return
		}
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
			r.signal(sg.Sig)
		}
	}()
	var res wire.Result
	if err := wire.Read(nd, &res); err != nil {
		res = wire.Result{Err: fmt.Sprintf("node %d: connection lost while running %s (pid %d)", ex.Node, ex.Path, st.PID)}
	}
	copies.Wait()
	wire.Write(cl, res)
}

// prepare checks the caller may run on the node and resolves the program's
// closure reading files as the caller.
func (m *Master) prepare(who caller, id uint64, ex wire.Exec) (*relay, []wire.FileRef, error) {
	if err := m.mayUse(who, ex.Node); err != nil {
		return nil, nil, err
	}
	if len(ex.Argv) == 0 || ex.Path == "" {
		return nil, nil, fmt.Errorf("node %d: empty command", ex.Node)
	}
	var files []wire.FileRef
	var reals map[string]string
	err := creds.Do(who.wire(), func() error {
		if err := syscallAccess(ex.Path); err != nil {
			return err
		}
		var err error
		files, reals, err = m.closure(ex.Path)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("node %d: %s: %w", ex.Node, ex.Path, err)
	}
	r := &relay{id: id, owner: who.cred.UID, reals: reals, proc: wire.Proc{
		Node: ex.Node, Ghost: who.pid, UID: who.cred.UID, Argv: ex.Argv,
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
// how many content bytes it sent.
func sendFiles(nd net.Conn, node int, reals map[string]string) (int64, error) {
	var need wire.Need
	if err := wire.Read(nd, &need); err != nil {
		return 0, fmt.Errorf("node %d: exec: %w", node, err)
	}
	var sent int64
	for _, h := range need.Hashes {
		real, ok := reals[h]
		if !ok {
			return sent, fmt.Errorf("node %d: asked for unknown file %s", node, h)
		}
		n, err := sendFile(nd, real, h)
		sent += n
		if err != nil {
			return sent, fmt.Errorf("node %d: send %s: %w", node, real, err)
		}
	}
	return sent, nil
}

func sendFile(w io.Writer, path, hash string) (int64, error) {
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
	n, err := io.Copy(w, io.LimitReader(fh, fi.Size()))
	if err == nil && n != fi.Size() {
		err = fmt.Errorf("file shrank while sending (%d of %d bytes)", n, fi.Size())
	}
	return n, err
}

// spliceStdio opens the node's three stdio streams for id and copies them
// to and from the client's.
func (m *Master) spliceStdio(s *session, id uint64, cl [3]net.Conn, copies *sync.WaitGroup) error {
	var nd [3]net.Conn
	for fd := 0; fd < 3; fd++ {
		c, err := s.open(wire.Header{Op: wire.OpAttach, Attach: &wire.Attach{ID: id, FD: fd}})
		if err != nil {
			for _, o := range nd[:fd] {
				o.Close()
			}
			return err
		}
		nd[fd] = c
	}
	go func() { // stdin: client → node; not waited for (like os/exec with a terminal)
		io.Copy(nd[0], cl[0])
		nd[0].Close()
	}()
	for fd := 1; fd < 3; fd++ {
		copies.Add(1)
		go func() {
			defer copies.Done()
			io.Copy(cl[fd], nd[fd])
			cl[fd].Close()
			nd[fd].Close()
		}()
	}
	return nil
}

func (m *Master) procList() wire.Procs {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := wire.Procs{Procs: make([]wire.Proc, 0, len(m.procs))}
	for _, r := range m.procs {
		out.Procs = append(out.Procs, r.proc)
	}
	return out
}

// kill signals a remote process: by (node, pid), or every process of a ghost.
func (m *Master) kill(who caller, k wire.Kill) error {
	m.mu.Lock()
	var hit []*relay
	for _, r := range m.procs {
		if (k.Ghost != 0 && r.proc.Ghost == k.Ghost) || (k.Ghost == 0 && r.proc.Node == k.Node && r.proc.PID == k.PID) {
			hit = append(hit, r)
		}
	}
	m.mu.Unlock()
	if len(hit) == 0 {
		if k.Ghost != 0 {
			return fmt.Errorf("no remote process for pid %d", k.Ghost)
		}
		return fmt.Errorf("node %d: no such process %d", k.Node, k.PID)
	}
	for _, r := range hit {
		if who.cred.UID != 0 && who.cred.UID != r.owner {
			return fmt.Errorf("node %d: pid %d: operation not permitted", r.proc.Node, r.proc.PID)
		}
	}
	for _, r := range hit {
		if err := r.signal(k.Sig); err != nil {
			return fmt.Errorf("node %d: pid %d: %w", r.proc.Node, r.proc.PID, err)
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

// rendezvous pairs a client's stdio streams with the exec they belong to;
// only streams from the same client pid are accepted.
type rendezvous struct {
	mu sync.Mutex
	m  map[uint64]*slot
}

type slot struct {
	pid     int
	streams [3]net.Conn
	n       int
	full    chan struct{}
}

func (r *rendezvous) expect(id uint64, pid int) *slot {
	s := &slot{pid: pid, full: make(chan struct{})}
	r.mu.Lock()
	r.m[id] = s
	r.mu.Unlock()
	return s
}

// forget drops id; streams that arrived for an exec that gave up are closed.
func (r *rendezvous) forget(id uint64) {
	r.mu.Lock()
	s := r.m[id]
	delete(r.m, id)
	r.mu.Unlock()
	if s == nil {
		return
	}
	select {
	case <-s.full: // handed over to the exec, which closes them
	default:
		for _, c := range s.streams {
			if c != nil {
				c.Close()
			}
		}
	}
}

func (r *rendezvous) deliver(id uint64, fd, pid int, c net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.m[id]
	if s == nil || s.pid != pid || fd < 0 || fd > 2 || s.streams[fd] != nil {
		c.Close()
		return
	}
	s.streams[fd] = c
	s.n++
	if s.n == 3 {
		close(s.full)
	}
}

func (s *slot) wait(d time.Duration) ([3]net.Conn, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.full:
		return s.streams, nil
	case <-t.C:
		return [3]net.Conn{}, errors.New("client did not attach its stdio streams")
	}
}
