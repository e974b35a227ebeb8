package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
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
	x     *execution         // the exec relaying it (move.go)
	// usage and prev are the job's latest two usage readings (acct.go);
	// under Master.mu.
	usage, prev *wire.Usage
	ended       bool // booked as finished (acct.go): no longer a running job
}

// send writes sg on the exec stream to the node.
func (r *relay) send(sg wire.Signal) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	return wire.Write(r.node, sg)
}

// signal sends sig to the job's process group on its node.
func (r *relay) signal(sig int) error { return r.send(wire.Signal{Sig: sig}) }

// hangup tells the node the process's client is gone: it hangs the job
// up (wire.Signal.Hangup: SIGHUP, then SIGKILL after a grace period, as
// local.go does on the master) and its Result still comes.
func (r *relay) hangup() error { return r.send(wire.Signal{Hangup: true}) }

// resumeStopped continues the process, which stops itself to move or
// fork, once it has stopped (wire.Signal.Stopped): a failed move can
// end before the process has stopped.
func (r *relay) resumeStopped() error {
	return r.send(wire.Signal{Sig: int(syscall.SIGCONT), Stopped: true})
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
//
// The steps are execution's methods: resolve, start (on the node), relay
// and finish; close undoes what they set up, on every path.
func (m *Master) exec(ctx context.Context, c *client, cl net.Conn, ex wire.Exec) {
	x := &execution{m: m, c: c, cl: cl, node: ex.Node, cid: ex.ID, moves: moves{next: make(chan *nextLeg, 1)}}
	defer x.close()
	if ex.Fork != 0 {
		ex.NoStdin = true // the copy reads /dev/null (fork.go)
	}
	if !ex.NoIO && !ex.NoStdin {
		if !c.att.Expect(x.cid) {
			wire.Write(cl, wire.Fail(wire.NodeErrorf(ex.Node, wire.CodeInvalid, "exec id %d is already in use", x.cid)))
			return
		}
		x.expecting = true
	}
	resolve := x.resolve
	if ex.Fork != 0 {
		resolve = x.adopt // a process's forked copy (fork.go)
	}
	if err := resolve(ctx, ex); err != nil {
		x.adopted(0, err)
		x.fail(err)
		return
	}
	st, err := x.start()
	if err != nil {
		x.adopted(0, err)
		x.fail(err)
		return
	}
	if st.Failed() {
		x.adopted(0, st.Failure())
		wire.Write(cl, st.Result)
		return
	}
	if x.fork != nil {
		x.adopted(st.PID, nil)
		if x.ex.Restore.Continue {
			x.r.signal(int(syscall.SIGCONT))
		}
	}
	res, ok := x.relay(ctx, st.Started)
	for ok && res.Moved { // its process runs on another node now (move.go)
		res, ok = x.nextLeg(ctx, res)
	}
	rec := x.m.book(x.r, res) // acct.go
	x.finish(res, ok)
	x.m.ledger.Log(rec) // the file: after the client has its Result
}

// execution is one client exec in the master, shared by exec's steps.
type execution struct {
	m    *Master
	c    *client
	cl   net.Conn // the client's exec stream
	node int
	cid  uint64 // the client's id of the exec
	// expecting: the client's stdin stream is expected and not yet
	// claimed (abandoned on failure).
	expecting bool

	ex     wire.Exec // as the node gets it, with the master's id (resolve)
	r      *relay
	s      *session
	endJob func()        // the job's end (jobs)
	out    *link.Output  // where the node's output streams land; nil: NoIO
	opened atomic.Uint32 // the client's output streams opened: wire.Result.Opened

	nd, in, cin net.Conn      // the node's exec and stdin streams, the client's stdin
	stdin       *switchWriter // where the client's stdin goes: in, or after a move the next node's
	running     bool          // in m.procs and the client's ghosts
	omu         sync.Mutex
	couts       [2]net.Conn  // the client's output streams, opened at the first output
	moves       moves        // move.go
	fork        *stagedFork  // the fork this exec adopts (fork.go)
	forked      *wire.Forked // the process's last fork's outcome, until it asks (fork.go); under Master.mu
	done        chan struct{}
	unghost     func()
}

// fail answers the client with err, about the exec's node, giving up its
// stdin stream unless taken.
func (x *execution) fail(err error) {
	if x.expecting {
		x.c.att.Abandon(x.cid)
		x.expecting = false
	}
	wire.Write(x.cl, wire.Fail(wire.OnNode(x.node, err)))
}

// resolve checks the caller may run on the node, resolves the program's
// closure (prepare) and finds the node's session. The job counts from
// here (jobs).
func (x *execution) resolve(ctx context.Context, ex wire.Exec) error {
	m, who := x.m, x.c.who
	if !filepath.IsAbs(ex.Path) { // a client on a node without a copy of it (local.go)
		p, err := m.lookPathAs(ctx, who, ex)
		if err != nil {
			return wire.OnNode(ex.Node, err)
		}
		ex.Path = p
	}
	id := m.nextID.Add(1)
	r, prog, err := m.prepare(ctx, who, x.c.memo, id, ex)
	if err != nil {
		return err
	}
	if prog.shell { // a script without #!: the node runs it as execvp would
		ex.Path, ex.Argv = elfdeps.Shell, elfdeps.ShellArgv(ex.Path, ex.Argv)
	}
	x.endJob = m.jobs.start(ex.Node, who.cred.UID)
	s, err := m.session(ex.Node)
	if err != nil {
		return err
	}
	ex.ID, ex.Cred, ex.Files, ex.Ghost = id, who.cred, prog.files, who.pid
	x.ex, x.r, x.s = ex, r, s
	return nil
}

// start starts the process on the node: it opens the exec stream and the
// stdin stream together, sends the files the node lacks, splices the
// client's stdin, and reads the node's first reply, whose Sent it sets.
func (x *execution) start() (wire.ExecReply, error) {
	var st wire.ExecReply
	s, id := x.s, x.ex.ID
	if !x.ex.NoIO {
		// Before the node can know the id.
		x.out = s.outs.Expect(id, x.output)
	}
	nd, err := s.open(wire.Header{Op: wire.OpExec, Exec: &x.ex})
	if err != nil {
		return st, err
	}
	x.nd, x.r.node, x.r.x = nd, nd, x
	if x.expecting {
		if x.in, err = s.open(wire.Header{Op: wire.OpAttach, Attach: &wire.Attach{ID: id, FD: 0}}); err != nil {
			return st, err
		}
	}
	sent, err := x.m.sendFiles(s, nd, x.r.reals)
	if err != nil {
		return st, err
	}
	if x.fork != nil { // a forked copy's image follows its files (fork.go)
		if err := sendImage(nd, x.fork.cp); err != nil {
			return st, s.downErr("send image", err)
		}
	}
	if x.expecting {
		x.expecting = false
		if x.cin, err = x.c.att.Claim(x.cid); err != nil {
			return st, wire.NodeErrorf(x.node, wire.CodeInternal, "client stdin: %w", err)
		}
		x.stdin = &switchWriter{w: x.in}
		sw, cin := x.stdin, x.cin
		go func() { // not waited for (like os/exec with a terminal)
			io.Copy(sw, cin)
			sw.Close()
		}()
	}
	if err := wire.Read(nd, &st); err != nil {
		return st, s.downErr("exec", err)
	}
	st.Sent = sent
	return st, nil
}

// output splices an output stream the node opened for fd with one it
// opens to the client (link.Outputs runs it on the stream's goroutine).
// The client's stream stays open until finish: after a move (move.go)
// the next node's output continues on it.
//
// Once the client is gone, what the node still sends is read and
// dropped, never left unread: the node sends the Result only after the
// process's output is delivered, and a stream nobody reads would hold
// that — and the exec, its bpstat -p line and the node's relay — for
// ever (`bpsh N seq 1 100000000 | head -2` did).
func (x *execution) output(fd int, nd net.Conn) {
	defer nd.Close()
	if o := x.clientOutput(fd); o != nil {
		if _, err := io.Copy(o, nd); err == nil {
			return
		}
	}
	io.Copy(io.Discard, nd)
}

// clientOutput opens the client's stream for output fd, once.
func (x *execution) clientOutput(fd int) net.Conn {
	x.omu.Lock()
	defer x.omu.Unlock()
	if o := x.couts[fd-1]; o != nil {
		return o
	}
	o, err := link.OpenOutput(x.c.mux, x.cid, fd)
	if err != nil {
		return nil
	}
	x.couts[fd-1] = o
	x.opened.Or(uint32(wire.OpenedFD(fd)))
	return o
}

// closeOutputs closes the client's output streams: no more output comes.
func (x *execution) closeOutputs() {
	x.omu.Lock()
	defer x.omu.Unlock()
	for i, o := range x.couts {
		if o != nil {
			o.Close()
			x.couts[i] = nil
		}
	}
}

// relay makes the running process known (m.procs, the client's ghosts),
// tells the client it started, forwards the client's signals until the
// node's Result, and returns that; a lost node is ok false.
func (x *execution) relay(ctx context.Context, st wire.Started) (res wire.Result, ok bool) {
	m, r := x.m, x.r
	r.proc.PID = st.PID
	r.proc.Started = m.clock()
	m.mu.Lock()
	m.procs[r.id] = r
	m.mu.Unlock()
	x.unghost = m.ghostOf(ctx, x.c, r)
	x.running = true
	if err := wire.Write(x.cl, st); err != nil {
		r.hangup()
	}
	// Signals from the client go to the node; the client going away is a hangup.
	x.done = make(chan struct{})
	go func(done <-chan struct{}) {
		for {
			var sg wire.Signal
			if err := wire.Read(x.cl, &sg); err != nil {
				select {
				case <-done:
				default:
					r.hangup()
				}
				return
			}
			if resumed(sg) {
				x.c.resumed.Store(true)
			}
			m.fromClient(r, sg) // a signal, maybe for one process, or a ghost's pid (ghosts.go)
		}
	}(x.done)
	if err := m.readResult(x.nd, x.cl, x.r, &res); err != nil { // and the Updates before it (ghosts.go)
		return wire.Fail(x.s.downErr(fmt.Sprintf("running %s (pid %d)", x.ex.Path, st.PID), err)), false
	}
	return res, true
}

// finish waits for the output streams the node's Result names to be
// relayed, and forwards the Result to the client, naming the streams
// opened to it.
func (x *execution) finish(res wire.Result, ok bool) {
	if x.out != nil {
		if !ok {
			x.s.outs.Finish(x.ex.ID, x.out, 0, 0, nil)
		} else if err := x.s.outs.Finish(x.ex.ID, x.out, res.Opened, attachTimeout, x.s.done); err != nil && res.Err == "" {
			// The streams the Result names were opened before it was
			// written: they are late only by as long as this session's
			// accept loop is behind.
			res = wire.Fail(wire.NodeErrorf(x.node, wire.CodeInternal, "%s (pid %d): output lost: %w", x.ex.Path, x.r.proc.PID, err))
		}
	}
	x.closeOutputs()
	res.Opened = uint8(x.opened.Load())
	wire.Write(x.cl, res)
}

// close undoes what the steps set up, last first: the signal relay, the
// process's registration, the streams, the output registration, the job,
// and the client's exec stream.
func (x *execution) close() {
	if x.done != nil {
		close(x.done)
	}
	if x.running {
		x.unghost()
		x.m.mu.Lock()
		delete(x.m.procs, x.r.id)
		x.m.mu.Unlock()
	}
	for _, c := range []net.Conn{x.cin, x.in, x.nd} {
		if c != nil {
			c.Close() // the stdin copy may have closed in: twice is harmless
		}
	}
	if x.out != nil {
		x.s.outs.Finish(x.ex.ID, x.out, 0, 0, nil) // after an early return; else a no-op
	}
	x.closeOutputs()
	if x.endJob != nil {
		x.endJob()
	}
	x.cl.Close()
}

// prepare checks the caller may run on the node and resolves the program's
// closure reading files as the caller (remembered per connection: memo).
func (m *Master) prepare(ctx context.Context, who caller, memo *closureMemo, id uint64, ex wire.Exec) (*relay, program, error) {
	if err := m.mayUse(who, ex.Node); err != nil {
		return nil, program{}, err
	}
	if len(ex.Argv) == 0 || ex.Path == "" {
		return nil, program{}, wire.NodeErrorf(ex.Node, wire.CodeInvalid, "empty command")
	}
	prog, err := m.resolve(ctx, who, memo, ex.Path)
	if err != nil {
		return nil, program{}, wire.NodeErrorf(ex.Node, "", "%s: %w", ex.Path, err)
	}
	r := &relay{id: id, owner: who.cred.UID, reals: prog.reals, proc: wire.Proc{
		Node: ex.Node, Ghost: who.pid, Client: who.pid, UID: who.cred.UID, Argv: ex.Argv,
	}}
	return r, prog, nil
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
	// Opened and closed by plain system calls: os.Open would first try
	// to register the file with the runtime's poller, four calls more.
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "open", Path: path, Err: err}
		}
		syscall.Close(fd)
		break
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w: not executable", fs.ErrPermission)
	}
	return nil
}

// program is what an exec of a program sends its node: its files (a
// closure's, with their content hashes), where to read each hash from,
// and whether it runs with elfdeps.Shell (a script without #!).
type program struct {
	files []wire.FileRef
	reals map[string]string // content hash → file to read it from
	shell bool
}

// closure resolves path's files and their content hashes, and where to
// read each hash from. Each file is sent once under its real path; the
// symlinks the loader follows to reach it travel as Target entries.
func (m *Master) closure(path string) (program, error) {
	fs, err := elfdeps.Closure("/", path, elfdeps.Options{Cache: m.ldcache})
	if err != nil {
		return program{}, err
	}
	out := make([]wire.FileRef, 0, len(fs))
	reals := make(map[string]string, len(fs))
	links := map[string]bool{}
	for _, f := range fs {
		h, err := m.hasher.Hash(f.Real)
		if err != nil {
			return program{}, err
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
	return program{files: out, reals: reals, shell: len(fs) > 0 && fs[0].Shell}, nil
}

// sendFiles answers the slave's Need with the file contents and returns
// how many content bytes it sent. At most MaxSends transfers run at once
// (see Config.MaxSends); the others wait for a turn, or for their node's
// session to end.
func (m *Master) sendFiles(s *session, nd net.Conn, reals map[string]string) (int64, error) {
	var need wire.Need
	if err := wire.Read(nd, &need); err != nil {
		return 0, s.downErr("exec", err)
	}
	if len(need.Hashes) == 0 {
		return 0, nil
	}
	for _, h := range need.Hashes {
		if _, ok := reals[h]; !ok {
			return 0, wire.NodeErrorf(s.node, wire.CodeInternal, "asked for unknown file %s", h)
		}
	}
	select {
	case m.sends <- struct{}{}:
		defer func() { <-m.sends }()
	case <-s.done:
		return 0, wire.NodeErrorf(s.node, wire.CodeNodeDown, "session ended before its files were sent")
	}
	var sent int64
	for _, h := range need.Hashes {
		real := reals[h]
		n, err := m.sendFile(nd, real, h)
		sent += n
		if err != nil {
			return sent, wire.NodeErrorf(s.node, "", "send %s: %w", real, err)
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
			return wire.Errorf(wire.CodeNotFound, "no remote process for pid %d", k.Ghost)
		}
		return wire.NodeErrorf(k.Node, wire.CodeNotFound, "no such process %d", k.PID)
	}
	for _, t := range hit {
		if who.cred.UID != 0 && who.cred.UID != t.r.owner {
			return wire.NodeErrorf(t.proc.Node, wire.CodePermission, "pid %d: operation not permitted", t.proc.PID)
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
		return wire.NodeErrorf(n, wire.CodeNotFound, "no such node")
	}
	return nd.CanRun(who.cred)
}
