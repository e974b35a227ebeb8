package bproc

import (
	"context"
	"errors"
	"fmt"
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
// bproc_rfork has no Go counterpart: a Go program cannot fork (its
// runtime's threads do not survive fork(2)). Start the work on the node
// with Command instead, or move the caller with Move.

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
	c, err := Dial(ctx, "")
	if err != nil {
		return err
	}
	from, err := c.Where(ctx)
	if err != nil {
		c.Close()
		return err
	}
	if from == target {
		c.Close()
		return nil
	}
	var r wire.Result
	err = c.call(ctx, wire.Header{Op: wire.OpMove, Move: &wire.Move{Target: target, Self: true}}, &r)
	c.Close() // nothing of this connection may be left to checkpoint
	if err != nil {
		return err
	}
	if err := remote(r); err != nil {
		return err
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGSTOP); err != nil {
		return fmt.Errorf("move: stop: %w", err)
	}
	// Continued: here, or on target.
	for try := 0; ; try++ {
		c, err = Dial(ctx, "")
		if err == nil {
			break
		}
		// The node's bpslave socket is there from its boot on; a moment
		// after a restore the process may race nothing, but be patient
		// with a busy node.
		if try == 20 || ctx.Err() != nil {
			return fmt.Errorf("move: after the move: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer c.Close()
	now, err := c.Where(ctx)
	if err != nil {
		return fmt.Errorf("move: after the move: %w", err)
	}
	if now != target {
		return &NodeError{Node: now, Code: CodeInternal, Msg: "could not move to node " + strconv.Itoa(target) + " (see the master's log)", Err: ErrNotMoved}
	}
	return nil
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
