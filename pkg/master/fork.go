package master

import (
	"context"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// Remote fork, the master's half: Move.Fork (bproc.Rfork, libbproc's
// bproc_rfork). A fork is a move whose source is not killed:
//
//  1. the process, which stopped itself, is checkpointed on its node
//     (move.go checkpoint) and stays stopped there, the master holding
//     its image;
//  2. its client is told to adopt a copy (Update.Fork on the exec's
//     stream); the client runs an exec whose Exec.Fork names it (adopt),
//     to which the master sends the image, restored on the target node
//     as a process of its own — its own exec, ghost, output streams (to
//     the client's output) and exit status — and continued there;
//  3. the fork's outcome (the copy's pid, or why there is none) is kept
//     for the process, which is then continued where it was and reads it
//     with its next OpWhere (Where.Forked).
//
// The copy has the process's pid (CRIU restores pids), so a node holds
// one copy of a process at most, and its stdin is /dev/null: the
// original keeps reading the job's stdin.

// stagedFork is a checkpoint waiting for its client to adopt the copy.
type stagedFork struct {
	x      *execution // the forking process's exec
	target int
	cp     *checkpointed
	// adopted gets the adopting exec's start: the copy's pid or why it
	// did not start (taken once, by copyTo).
	adopted chan forkStart
	claimed chan struct{} // closed once an exec took it
}

type forkStart struct {
	pid int
	err error
}

// forkTo makes a copy of x's process (which stopped itself) on node
// target, records the outcome for the process (Where.Forked) and lets
// it continue.
func (x *execution) forkTo(ctx context.Context, target int) {
	m := x.m
	pid, err := x.copyTo(ctx, target)
	f := &wire.Forked{Node: target, PID: pid}
	if err != nil {
		m.log.Warn("fork failed", "pid", x.r.proc.PID, "node", x.node, "target", target, "err", err)
		r := wire.Fail(wire.OnNode(target, err))
		f.Err, f.Code, f.ErrNode = r.Err, r.Code, r.Node
	}
	m.mu.Lock()
	x.forked = f
	m.mu.Unlock()
	x.r.resumeStopped() // it stops itself to fork
}

// copyTo checkpoints x's process, has its client adopt the copy on target,
// and returns the copy's pid there. The source continues once the
// checkpoint's stream closes (forkTo continues it too).
func (x *execution) copyTo(ctx context.Context, target int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, moveTimeout)
	defer cancel()
	x.moves.mu.Lock() // one move or fork of a process at a time
	defer x.moves.mu.Unlock()
	m := x.m
	done, err := m.moveSlot(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	cp, err := x.checkpoint(ctx, target, true)
	if err != nil {
		return 0, err
	}
	defer cp.close()
	sf := &stagedFork{x: x, target: target, cp: cp, adopted: make(chan forkStart, 1), claimed: make(chan struct{})}
	id := m.nextID.Add(1)
	m.mu.Lock()
	m.forks[id] = sf
	m.mu.Unlock()
	if err := wire.Write(x.cl, wire.Event{Update: &wire.Update{Fork: &wire.Fork{ID: id, Node: target}}}); err != nil {
		m.unstage(id)
		return 0, wire.Errorf(wire.CodeInternal, "the process's client is gone: %v", err)
	}
	select {
	case <-sf.claimed:
	case <-time.After(attachTimeout):
	case <-ctx.Done():
	}
	if m.unstage(id) { // else an exec claimed it, and answers on adopted
		return 0, wire.Errorf(wire.CodeInternal, "the process's client did not adopt its copy within %v (a client older than rfork?)", attachTimeout)
	}
	var st forkStart
	select {
	case st = <-sf.adopted:
	case <-ctx.Done():
		return 0, wire.Errorf(wire.CodeInternal, "the copy on node %d did not start within %v", target, moveTimeout)
	}
	if st.err == nil {
		m.log.Info("forked", "pid", x.r.proc.PID, "node", x.node, "to", target, "copy", st.pid, "image", cp.rep.Size,
			"took", time.Since(cp.began), "checkpoint", cp.ph.checkpoint, "upload", cp.ph.upload)
	}
	return st.pid, st.err
}

// unstage withdraws staged fork id, unless an exec claimed it first.
func (m *Master) unstage(id uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.forks[id]; !ok {
		return false
	}
	delete(m.forks, id)
	return true
}

// claim takes staged fork id for client c: only the client whose exec
// forked may adopt the copy.
func (m *Master) claim(c *client, id uint64) (*stagedFork, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sf := m.forks[id]
	if sf == nil || sf.x.c != c {
		return nil, wire.Errorf(wire.CodeNotFound, "no forked process %d to adopt", id)
	}
	delete(m.forks, id)
	close(sf.claimed)
	return sf, nil
}

// adopt is resolve for an exec that adopts a forked copy (Exec.Fork):
// the copy's exec restores the staged image on its node, as the forking
// process's exec with its program, arguments and environment.
func (x *execution) adopt(_ context.Context, ex wire.Exec) error {
	m, who := x.m, x.c.who
	sf, err := m.claim(x.c, ex.Fork)
	if err != nil {
		return err
	}
	x.fork = sf
	src := sf.x
	rex, reals := src.restoreExec(sf.target, sf.cp)
	rex.ID = m.nextID.Add(1)
	rex.NoStdin, rex.Stdin = true, ""
	rex.Ghost = who.pid
	x.node = sf.target
	x.r = &relay{id: rex.ID, owner: src.r.owner, reals: reals, proc: wire.Proc{
		Node: sf.target, Ghost: who.pid, Client: who.pid, UID: src.r.owner, Argv: src.r.proc.Argv,
	}}
	x.endJob = m.jobs.start(sf.target, src.r.owner)
	s, err := m.session(sf.target)
	if err != nil {
		return err
	}
	x.ex, x.s = rex, s
	return nil
}

// adopted tells the forking process's fork how the copy's start went,
// once.
func (x *execution) adopted(pid int, err error) {
	if x.fork != nil {
		x.fork.adopted <- forkStart{pid: pid, err: err}
		x.fork = nil
	}
}

// takeForked returns, once, the outcome of the last fork of the process
// a node client is (nil: none since it last asked).
func (m *Master) takeForked(who caller) *wire.Forked {
	if !who.remote {
		return nil
	}
	for _, t := range m.targets(wire.Kill{Node: who.node, PID: who.nodePID}) {
		if t.kid {
			continue
		}
		m.mu.Lock()
		f := t.r.x.forked
		t.r.x.forked = nil
		m.mu.Unlock()
		if f != nil {
			return f
		}
	}
	return nil
}
