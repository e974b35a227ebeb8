package bproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// Process migration: libbproc's bproc_move and bproc_execmove, and a
// move of any running remote process (bpmove). A moved process keeps its
// ghost (its pid on the master), its bpsh, stdio and exit status; its pid
// on the node stays the same too (CRIU restores it) unless that pid is
// taken on the new node, which fails the move. The master checkpoints it
// with CRIU on its node and restores it on the other (pkg/master
// move.go); what cannot move (an established TCP connection, a socket
// to another process, a file the new node does not have) fails the
// move with CRIU's reason, and the process goes on where it was.
//
// bproc_rfork is Rfork: the same checkpoint, restored on the other
// node while the original continues (fork.go; pkg/master fork.go).

// Move moves the remote process pid on node to node target and returns
// its pid there.
func (c *Client) Move(ctx context.Context, node, pid, target int) (int, error) {
	return c.move(ctx, wire.Move{Node: node, PID: pid, Target: target})
}

// MoveGhost moves the remote process whose ghost (its pid on the
// master, what ps shows) is ghost to node target, and returns its pid
// there.
func (c *Client) MoveGhost(ctx context.Context, ghost, target int) (int, error) {
	return c.move(ctx, wire.Move{Ghost: ghost, Target: target})
}

func (c *Client) move(ctx context.Context, mv wire.Move) (int, error) {
	var r wire.Result
	if err := c.call(ctx, wire.Header{Op: wire.OpMove, Move: &mv}, &r); err != nil {
		return 0, err
	}
	if err := remote(r); err != nil {
		return 0, err
	}
	return r.Status, nil
}

// ErrNotMoved is Move's error when the process is still where it was.
var ErrNotMoved = errors.New("not moved")

// Move moves the calling process to node target, as libbproc's
// bproc_move: it returns on target (nil), or where it was (an error
// wrapping ErrNotMoved; the master's log says why). The caller must be a
// process bpsh (or Command) started on a node. While it moves, the
// whole process is stopped: it stops itself, so that it holds no
// connection to be checkpointed, and the master continues it.
func Move(ctx context.Context, target int) error {
	from, w, err := moveSelf(ctx, wire.Move{Target: target, Self: true})
	if err != nil || from == target {
		return err
	}
	if w.Node != target {
		return &NodeError{Node: w.Node, Code: CodeInternal, Msg: "could not move to node " + strconv.Itoa(target) + " (see the master's log)", Err: ErrNotMoved}
	}
	return nil
}

// forkWait bounds how long Rfork waits for the outcome of a fork once
// continued: the master's bound on a fork (pkg/master moveTimeout) and
// then some.
const forkWait = 6 * time.Minute

// Rfork forks the calling process onto node target, as libbproc's
// bproc_rfork: a copy of the process — its memory, open files, threads
// and where it is in its code — runs on target, and both return from
// Rfork, the copy with 0 and the caller with the copy's pid on target.
// That pid is the caller's own: CRIU restores a process under its pid,
// so a node holds one copy of a process at most. The copy's stdin is
// /dev/null; its output goes where the caller's goes (the bpsh that
// started the caller adopts it, with a ghost of its own, and waits for
// it). What cannot move cannot be copied either (Move; README "Process
// migration"): then Rfork returns an error and no copy runs. The caller
// must be a process bpsh (or Command) started on a node, and is stopped
// while its copy is made.
func Rfork(ctx context.Context, target int) (int, error) {
	from, w, err := moveSelf(ctx, wire.Move{Target: target, Self: true, Fork: true})
	// Continued before the master had the outcome (CRIU lets a process
	// it could not checkpoint run on before it gives up): it comes within
	// the master's bound on a fork.
	for deadline := time.Now().Add(forkWait); err == nil && from != target && w.Node == from && w.Forked == nil && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("rfork: waiting for the outcome: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		w, err = whereNow(ctx)
	}
	switch {
	case err != nil:
		return 0, err
	case from == target:
		return 0, &NodeError{Node: target, Code: CodeInvalid, Msg: "rfork: the process runs there already, and a node holds one copy of it at most (its pid)"}
	case w.Node != from:
		return 0, nil // the copy
	case w.Forked == nil || w.Forked.Node != target:
		return 0, &NodeError{Node: target, Code: CodeInternal, Msg: "rfork: no copy was made (see the master's log)"}
	case w.Forked.Err != "":
		return 0, remoteOn(target, wire.Result{Err: "rfork: " + w.Forked.Err, Code: w.Forked.Code, Node: w.Forked.ErrNode})
	}
	return w.Forked.PID, nil
}

// moveSelf asks the master to move or fork (mv) the calling process,
// stops it until the master continues it, and returns the node it was on
// and the master's Where once continued. It returns at once, with no
// Where, if the process is on mv.Target already.
func moveSelf(ctx context.Context, mv wire.Move) (from int, w wire.Where, err error) {
	verb := "move"
	if mv.Fork {
		verb = "rfork"
	}
	c, conn, err := dial(ctx, "")
	if err != nil {
		return 0, w, err
	}
	sock := socketInode(conn)
	if from, err = c.Where(ctx); err != nil || from == mv.Target {
		c.Close()
		return from, w, err
	}
	var r wire.Result
	err = c.call(ctx, wire.Header{Op: wire.OpMove, Move: &mv}, &r)
	c.Close() // nothing of this connection may be left to checkpoint
	if err != nil {
		return from, w, err
	}
	// Close may return while the session's own shutdown (the master
	// ended it first) is still closing the socket: CRIU would find it
	// open, a socket to a process outside, and refuse the checkpoint.
	waitClosed(sock, time.Second)
	if err := remote(r); err != nil {
		return from, w, err
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGSTOP); err != nil {
		return from, w, fmt.Errorf("%s: stop: %w", verb, err)
	}
	// Continued: here, or on mv.Target.
	if w, err = whereNow(ctx); err != nil {
		return from, w, fmt.Errorf("%s: continued: %w", verb, err)
	}
	return from, w, nil
}

// socketInode returns the inode of conn's socket (0 when unknown).
func socketInode(conn net.Conn) uint64 {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	var ino uint64
	raw.Control(func(fd uintptr) {
		var st syscall.Stat_t
		if syscall.Fstat(int(fd), &st) == nil {
			ino = st.Ino
		}
	})
	return ino
}

// waitClosed waits, at most limit, until no descriptor of this process
// is the socket with inode ino.
func waitClosed(ino uint64, limit time.Duration) {
	if ino == 0 {
		return
	}
	name := fmt.Sprintf("socket:[%d]", ino)
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return
		}
		open := false
		for _, e := range ents {
			if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); l == name {
				open = true
				break
			}
		}
		if !open {
			return
		}
	}
}

// whereNow asks the master, on a new connection, where the calling
// process runs and how its last fork went (wire.Where).
func whereNow(ctx context.Context) (wire.Where, error) {
	var w wire.Where
	var c *Client
	var err error
	for try := 0; ; try++ {
		if c, err = Dial(ctx, ""); err == nil {
			break
		}
		// The node's bpslave socket is there from its boot on; a moment
		// after a restore the process may race nothing, but be patient
		// with a busy node.
		if try == 20 || ctx.Err() != nil {
			return w, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer c.Close()
	if err := c.call(ctx, wire.Header{Op: wire.OpWhere}, &w); err != nil {
		return w, err
	}
	if w.Err != "" {
		return w, errors.New(w.Err)
	}
	return w, nil
}

// Execmove replaces the calling process with program path run on node,
// as libbproc's bproc_execmove: the caller's pid goes on standing for
// the remote process — its stdio, signals and exit status are the
// remote one's (the process becomes bpsh, which relays them). It
// returns only on failure. bpsh is looked up on PATH; env is the
// program's environment (nil: the caller's).
func Execmove(node int, path string, argv []string, env []string) error {
	bpsh, err := exec.LookPath("bpsh")
	if err != nil {
		return fmt.Errorf("execmove: %w", err)
	}
	if env == nil {
		env = os.Environ()
	}
	args := []string{"bpsh", strconv.Itoa(node), path}
	if len(argv) > 1 {
		args = append(args, argv[1:]...)
	}
	return fmt.Errorf("execmove: %w", syscall.Exec(bpsh, args, env))
}
