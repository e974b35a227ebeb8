package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/wire"
)

// Process migration, the master's half: OpMove (bpmove, bproc.Move).
//
// A move is one more leg of the process's exec: the exec (exec.go) that
// relays it between its client and its node goes on relaying it on the
// next node, so the client — bpsh and the process's ghost — keeps the
// same streams, pid and job, and notices nothing but the node's name in
// the records. The steps, each of which leaves the process running
// where it was if it fails:
//
//  1. checkpoint on the source node (OpCheckpoint; pkg/slave move.go),
//     with CRIU — the master's own /usr/sbin/criu and its libraries,
//     sent like a program's closure — leaving the process stopped there,
//     and read the image;
//  2. hold the client's stdin (its bytes wait on the master) and restore
//     on the target node: an exec whose Restore is set, with the
//     program's closure and CRIU's (the target's content cache sends
//     only what it lacks, as for any exec) and the image; the target's
//     output streams are held until the source's are drained, so output
//     keeps its order;
//  3. commit: the source kills its stopped copy and its exec ends with
//     Result.Moved; the exec (nextLeg) finishes the source's output and
//     carries on with the target's exec stream. Signals, stdin and the
//     records (bpstat -p) follow the process from the commit on.
//
// A process that asks to move itself (Move.Self, bproc.Move) stops
// itself once answered, so that it holds no connection to be
// checkpointed; the master waits for it to stop and continues it with
// SIGCONT on whichever node it is on afterwards. A fork (Move.Fork,
// bproc.Rfork) is the same checkpoint, restored while the source goes on
// (fork.go).

// moveTimeout bounds a whole move.
const moveTimeout = 5 * time.Minute

// maxMoves is how many moves and forks the master carries out at once;
// more wait their turn (within moveTimeout). Each holds a checkpoint
// image in the master's temporary directory: users moving many big
// processes at once must not fill it.
const maxMoves = 4

// moveSlot waits for a turn to move or fork (maxMoves) and returns
// what gives it back.
func (m *Master) moveSlot(ctx context.Context) (func(), error) {
	select {
	case m.moveSlots <- struct{}{}:
		return func() { <-m.moveSlots }, nil
	case <-ctx.Done():
		return nil, wire.Errorf(wire.CodeRefused, "%d moves or forks in flight took longer than %v", maxMoves, moveTimeout)
	}
}

// moves serialises the moves of one exec and hands the next leg from
// the mover to the exec's relay loop.
type moves struct {
	mu   sync.Mutex
	next chan *nextLeg // one at a time: made with the exec
}

// nextLeg is the process's exec on its next node, started, waiting for
// the commit.
type nextLeg struct {
	s        *session
	ex       wire.Exec
	nd, in   net.Conn
	pid      int
	out      *link.Output  // its output streams' registration (nil: NoIO)
	drained  chan struct{} // closed once the previous node's output is all relayed
	switched chan struct{} // closed once the exec relays this leg
	endJob   func()
}

// move serves OpMove on stream st: the answer is a Result whose Status
// is the new pid. A process moving itself is answered first (it stops
// itself then) and continued with SIGCONT wherever it is afterwards.
func (m *Master) move(ctx context.Context, who caller, st net.Conn, mv wire.Move) {
	x, err := m.moving(who, mv)
	if err != nil || !mv.Self {
		pid := 0
		if err == nil {
			pid, err = x.moveTo(ctx, mv.Target, false)
		}
		r := result(err)
		r.Status = pid
		wire.Write(st, r)
		return
	}
	wire.Write(st, wire.Result{})
	st.Close()
	if mv.Fork {
		x.forkTo(context.WithoutCancel(ctx), mv.Target) // fork.go
		return
	}
	if _, err := x.moveTo(context.WithoutCancel(ctx), mv.Target, true); err != nil {
		m.log.Warn("move failed", "pid", x.r.proc.PID, "node", x.node, "target", mv.Target, "err", err)
		x.r.resumeStopped() // it stops itself to move
	}
}

// moving finds the exec of the process a Move names and checks the
// caller may move it there.
func (m *Master) moving(who caller, mv wire.Move) (*execution, error) {
	k := wire.Kill{Node: mv.Node, PID: mv.PID, Ghost: mv.Ghost}
	if mv.Fork && !mv.Self {
		return nil, wire.Errorf(wire.CodeInvalid, "only a process itself can fork")
	}
	if mv.Self {
		if !who.remote {
			return nil, wire.Errorf(wire.CodeInvalid, "only a process on a node can move or fork itself")
		}
		k = wire.Kill{Node: who.node, PID: who.nodePID}
	}
	var x *execution
	for _, t := range m.targets(k) {
		if t.kid {
			return nil, wire.NodeErrorf(t.proc.Node, wire.CodeInvalid, "pid %d is a child of pid %d on its node: move the job's process (it moves with its children)", t.proc.PID, t.proc.Parent)
		}
		x = t.r.x
	}
	if x == nil {
		if mv.Ghost != 0 {
			return nil, wire.Errorf(wire.CodeNotFound, "no remote process for pid %d", mv.Ghost)
		}
		return nil, wire.NodeErrorf(k.Node, wire.CodeNotFound, "no such process %d", k.PID)
	}
	if who.cred.UID != 0 && who.cred.UID != x.r.owner {
		return nil, wire.NodeErrorf(x.node, wire.CodePermission, "pid %d: operation not permitted", x.r.proc.PID)
	}
	if err := m.mayUse(who, mv.Target); err != nil {
		return nil, err
	}
	if mv.Target == x.node {
		return nil, wire.NodeErrorf(mv.Target, wire.CodeInvalid, "pid %d already runs there", x.r.proc.PID)
	}
	return x, nil
}

// criuPath is the CRIU program moves use, from the master's PATH.
func criuPath() (string, error) {
	for _, p := range []string{"/usr/sbin/criu", "/sbin/criu"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("criu")
	if err != nil {
		return "", wire.Errorf(wire.CodeNotFound, "criu is not installed on the master (Debian package criu): processes cannot move")
	}
	return p, nil
}

// moveTo moves x's process to node target and returns its pid there.
func (x *execution) moveTo(ctx context.Context, target int, self bool) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, moveTimeout)
	defer cancel()
	x.moves.mu.Lock()
	defer x.moves.mu.Unlock()
	m, src := x.m, x.node
	done, err := m.moveSlot(ctx)
	if err != nil {
		return 0, x.stays(src, err)
	}
	defer done()
	committed := false
	if x.stdin != nil {
		x.stdin.hold() // the client's stdin waits here until the process runs somewhere
		defer func() {
			if !committed {
				x.stdin.release()
			} // else the next leg releases it, into its own stream
		}()
	}

	// 1. Checkpoint on the source.
	cp, err := x.checkpoint(ctx, target, self)
	if err != nil {
		return 0, x.stays(src, err)
	}
	defer cp.close()
	// From here, every failure lets the source continue (its Verdict
	// never says Commit: closing ck does it).

	// 2. Restore on the target.
	nl, err := x.restoreOn(ctx, target, cp)
	if err != nil {
		return 0, x.stays(src, err)
	}

	// 3. Commit: the next leg is ready before the source's exec ends.
	x.moves.next <- nl
	committed = true
	err = wire.Write(cp.ck, wire.Verdict{Commit: true})
	if err == nil {
		var done wire.Result
		if err = wire.Read(cp.ck, &done); err == nil && done.Err != "" {
			err = errors.New(done.Err) // it ended meanwhile: the copy must go
		}
	}
	if err != nil {
		// The source may or may not have killed its copy: one must go.
		select {
		case <-x.moves.next:
			committed = false
			killLeg(m, nl)
			return 0, wire.NodeErrorf(src, wire.CodeNodeDown, "pid %d stays on node %d: commit: %w", x.r.proc.PID, src, err)
		default: // the relay loop took it: the source's exec ended, the move happened
		}
	}
	select { // the exec's fields are the next leg's from here: the next move may read them
	case <-nl.switched:
	case <-ctx.Done():
	}
	ph := cp.ph
	m.log.Info("moved", "pid", x.r.proc.PID, "from", src, "to", target, "ghost", x.r.proc.Ghost, "image", cp.rep.Size,
		"took", time.Since(cp.began), "checkpoint", ph.checkpoint, "upload", ph.upload, "files", ph.files, "download", ph.download, "restore", ph.restore)
	return nl.pid, nil
}

// stays is a move's failure err, saying that the process goes on where
// it was; still about the node it is about (the context inside, as
// wire.Fail wants it).
func (x *execution) stays(src int, err error) error {
	if e, ok := err.(*wire.Error); ok && e.Node != nil {
		return &wire.Error{Code: wire.CodeOf(err), Node: e.Node, Err: fmt.Errorf("pid %d stays on node %d: %w", x.r.proc.PID, src, e.Err)}
	}
	return fmt.Errorf("pid %d stays on node %d: %w", x.r.proc.PID, src, err)
}

// checkpointed is a process checkpointed on its node for a move or a
// fork: the checkpoint's stream (ck: the source waits on it for its
// Verdict, and continues when it closes without Commit), its reply, the
// image read to a file, and the CRIU program and closure the target
// gets with it.
type checkpointed struct {
	ck        net.Conn
	stopCtx   func() bool
	rep       wire.CheckpointReply
	img       *os.File
	tool      string
	toolFiles []wire.FileRef
	toolReals map[string]string
	began     time.Time
	ph        movePhases
}

func (cp *checkpointed) close() {
	cp.stopCtx()
	cp.ck.Close()
	if cp.img != nil {
		cp.img.Close()
		os.Remove(cp.img.Name())
	}
}

// checkpoint checkpoints x's process on its node, for a copy on target,
// and reads the image; the process stays stopped there until cp's
// Verdict, or until cp is closed. self: the process stopped itself.
func (x *execution) checkpoint(ctx context.Context, target int, self bool) (*checkpointed, error) {
	m, src := x.m, x.node
	if target == src {
		return nil, wire.NodeErrorf(target, wire.CodeInvalid, "pid %d already runs there", x.r.proc.PID)
	}
	if x.stdin == nil && !x.ex.NoIO && !x.ex.NoStdin {
		return nil, wire.NodeErrorf(src, wire.CodeRefused, "pid %d is still starting", x.r.proc.PID)
	}
	tool, err := criuPath()
	if err != nil {
		return nil, err
	}
	cp := &checkpointed{began: time.Now(), tool: tool}
	prog, err := m.closure(tool)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tool, err)
	}
	cp.toolFiles, cp.toolReals = prog.files, prog.reals
	ck, err := x.s.open(wire.Header{Op: wire.OpCheckpoint, Checkpoint: &wire.Checkpoint{
		ID: x.ex.ID, Tool: tool, Self: self, Files: cp.toolFiles}})
	if err != nil {
		return nil, err
	}
	cp.ck = ck
	cp.stopCtx = context.AfterFunc(ctx, func() { ck.SetDeadline(time.Now()) })
	if err := cp.read(m, x.s); err != nil {
		cp.close()
		return nil, err
	}
	return cp, nil
}

// read sends the checkpoint tool's files the node lacks and reads the
// node's reply and the image.
func (cp *checkpointed) read(m *Master, s *session) error {
	if _, err := m.sendFiles(s, cp.ck, cp.toolReals); err != nil {
		return err
	}
	if err := wire.Read(cp.ck, &cp.rep); err != nil {
		return wire.NodeErrorf(s.node, wire.CodeNodeDown, "checkpoint: %w", err)
	}
	if cp.rep.Err != "" {
		return wire.NodeErrorf(s.node, cp.rep.Code, "%s", cp.rep.Err)
	}
	cp.ph.checkpoint = time.Since(cp.began)
	var err error
	if cp.img, err = os.CreateTemp("", "beo-move-*.img"); err != nil {
		return err
	}
	if _, err := io.CopyN(cp.img, cp.ck, cp.rep.Size); err != nil {
		return wire.NodeErrorf(s.node, wire.CodeNodeDown, "checkpoint image: %w", err)
	}
	cp.ph.upload = time.Since(cp.began) - cp.ph.checkpoint
	return nil
}

// movePhases is where a move's time went, for its log line: the
// checkpoint (the source receives CRIU if it lacks it, stops, dumps and
// packs the tree), the image's upload to the master, the program's and
// CRIU's files the target lacked, the image's download (the target
// unpacks it as it arrives), and the restore (CRIU on the target, until
// the copy runs).
type movePhases struct {
	checkpoint, upload, files, download, restore time.Duration
}

// restoreExec is the exec that restores checkpoint cp of x's process
// on node target, and where to read its files from.
func (x *execution) restoreExec(target int, cp *checkpointed) (wire.Exec, map[string]string) {
	ex := x.ex
	ex.ID = x.m.nextID.Add(1)
	ex.Node = target
	ex.Files = append(append([]wire.FileRef{}, x.ex.Files...), cp.toolFiles...)
	ex.Restore = &wire.Restore{Tool: cp.tool, Size: cp.rep.Size, Pipes: cp.rep.Pipes, Continue: cp.rep.Continue, Cgroup: cp.rep.Cgroup}
	reals := make(map[string]string, len(x.r.reals)+len(cp.toolReals))
	for h, p := range x.r.reals {
		reals[h] = p
	}
	for h, p := range cp.toolReals {
		reals[h] = p
	}
	return ex, reals
}

// sendImage sends checkpoint cp's image on a restore's exec stream,
// after its files.
func sendImage(nd net.Conn, cp *checkpointed) error {
	if _, err := io.Copy(nd, io.NewSectionReader(cp.img, 0, cp.rep.Size)); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// restoreOn restores checkpoint cp on node target as a new exec of x's
// process and returns it, started.
func (x *execution) restoreOn(ctx context.Context, target int, cp *checkpointed) (*nextLeg, error) {
	m := x.m
	t, err := m.session(target)
	if err != nil {
		return nil, err
	}
	ex, reals := x.restoreExec(target, cp)
	nl := &nextLeg{s: t, ex: ex, drained: make(chan struct{}), switched: make(chan struct{}), endJob: m.jobs.start(target, x.r.owner)}
	ok := false
	defer func() {
		if !ok {
			killLeg(m, nl)
		}
	}()
	if !ex.NoIO {
		// Before the node can know the id; its output waits for the
		// previous node's to be relayed (nextLeg).
		nl.out = t.outs.Expect(ex.ID, func(fd int, c net.Conn) {
			<-nl.drained
			x.output(fd, c)
		})
	}
	if nl.nd, err = t.open(wire.Header{Op: wire.OpExec, Exec: &ex}); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { nl.nd.SetDeadline(time.Now()) })
	defer stop()
	if x.stdin != nil {
		if nl.in, err = t.open(wire.Header{Op: wire.OpAttach, Attach: &wire.Attach{ID: ex.ID, FD: 0}}); err != nil {
			return nil, err
		}
	}
	ph := &cp.ph
	began := time.Now()
	if _, err := m.sendFiles(t, nl.nd, reals); err != nil {
		return nil, err
	}
	ph.files = time.Since(began)
	if err := sendImage(nl.nd, cp); err != nil {
		return nil, wire.NodeErrorf(target, wire.CodeNodeDown, "%w", err)
	}
	ph.download = time.Since(began) - ph.files
	var st wire.ExecReply
	if err := wire.Read(nl.nd, &st); err != nil {
		return nil, wire.NodeErrorf(target, wire.CodeNodeDown, "restore: %w", err)
	}
	ph.restore = time.Since(began) - ph.files - ph.download
	if st.Failed() {
		return nil, wire.NodeErrorf(target, st.Code, "%s", st.Err)
	}
	nl.pid = st.PID
	ok = true
	return nl, nil
}

// killLeg ends a restored copy that must not run (its move failed).
func killLeg(m *Master, nl *nextLeg) {
	if nl.nd != nil {
		wire.Write(nl.nd, wire.Signal{Sig: int(syscall.SIGKILL)})
		nl.nd.Close()
	}
	if nl.in != nil {
		nl.in.Close()
	}
	close(nl.drained)
	if nl.out != nil {
		nl.s.outs.Finish(nl.ex.ID, nl.out, 0, 0, nil)
	}
	nl.endJob()
}

// nextLeg is the exec's move to the next node, once the source's exec
// ended with res (Result.Moved): the source's output is relayed to its
// end, then the exec relays the next node's process, whose Result it
// returns.
func (x *execution) nextLeg(ctx context.Context, res wire.Result) (wire.Result, bool) {
	var nl *nextLeg
	select {
	case nl = <-x.moves.next:
	case <-time.After(attachTimeout):
		return wire.Fail(wire.NodeErrorf(x.node, wire.CodeInternal, "pid %d moved away, but its new node is unknown", x.r.proc.PID)), false
	}
	// The source's output first, to its end.
	if x.out != nil {
		if err := x.s.outs.Finish(x.ex.ID, x.out, res.Opened, attachTimeout, x.s.done); err != nil {
			x.m.log.Warn("move: output of the old node lost", "node", x.node, "pid", x.r.proc.PID, "err", err)
		}
	}
	close(nl.drained)
	old := []net.Conn{x.nd, x.in}
	x.r.wmu.Lock()
	x.s, x.ex, x.node, x.nd, x.in, x.out = nl.s, nl.ex, nl.ex.Node, nl.nd, nl.in, nl.out
	x.r.node = nl.nd
	x.r.wmu.Unlock()
	x.endJob()
	x.endJob = nl.endJob
	x.m.mu.Lock()
	x.r.proc.Node, x.r.proc.PID = nl.ex.Node, nl.pid
	x.r.kids = nil                 // the node will report them anew
	x.r.usage, x.r.prev = nil, nil // the new node accounts from zero (its own cgroup)
	x.m.mu.Unlock()
	for _, c := range old {
		if c != nil {
			c.Close()
		}
	}
	if x.stdin != nil {
		if nl.in != nil {
			x.stdin.swap(nl.in)
		}
		x.stdin.release()
	}
	moved := nl.ex.Node
	wire.Write(x.cl, wire.Event{Update: &wire.Update{Moved: &moved, Procs: []wire.ProcChange{{PID: nl.pid}}}}) // its ghost's label
	close(nl.switched)
	if nl.ex.Restore.Continue {
		x.r.signal(int(syscall.SIGCONT))
	}
	var next wire.Result
	if err := x.m.readResult(x.nd, x.cl, x.r, &next); err != nil {
		return wire.Fail(wire.NodeErrorf(x.node, wire.CodeNodeDown, "running %s (pid %d): connection lost", x.ex.Path, nl.pid)), false
	}
	return next, true
}

// switchWriter is where the client's stdin goes: the node's stdin
// stream, held during a move and swapped for the next node's.
type switchWriter struct {
	mu     sync.Mutex
	cond   *sync.Cond
	held   bool
	w      net.Conn
	closed bool
}

func (s *switchWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.held {
		s.waitLocked()
	}
	if s.closed {
		return 0, net.ErrClosed
	}
	return s.w.Write(p)
}

func (s *switchWriter) waitLocked() {
	if s.cond == nil {
		s.cond = sync.NewCond(&s.mu)
	}
	s.cond.Wait()
}

// Close closes the current stream (the client's stdin ended).
func (s *switchWriter) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.held {
		s.waitLocked()
	}
	s.closed = true
	return s.w.Close()
}

// hold makes writes wait (a write in progress finishes first).
func (s *switchWriter) hold() {
	s.mu.Lock()
	s.held = true
	s.mu.Unlock()
}

// release lets writes go on.
func (s *switchWriter) release() {
	s.mu.Lock()
	s.held = false
	if s.cond != nil {
		s.cond.Broadcast()
	}
	s.mu.Unlock()
}

// swap replaces the stream; a client stdin that already ended ends the
// new one too.
func (s *switchWriter) swap(w net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w = w
	if s.closed {
		w.Close()
	}
}
