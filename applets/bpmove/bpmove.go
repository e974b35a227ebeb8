// Package bpmove implements bpmove: move a running remote process to
// another node (process migration, pkg/bproc Move).
//
//	bpmove PID NODE
//	bpmove -n FROM PID NODE
//
// PID is the process's pid on the master — its ghost, what ps, pgrep and
// bpstat -p show — or, with -n FROM, its pid on node FROM. NODE is where
// it goes (a node number, .N or nN). The
// process keeps its ghost, bpsh, stdio and exit status; on success
// bpmove prints "PID: node FROM -> node NODE (pid P there)". Only the
// process's owner or root may move it, and only to a node the owner may
// use. It fails, and the process goes on where it was, when CRIU cannot
// move it (an established TCP connection, a socket to another process,
// a file the target lacks, its pid taken there) or cannot run on the
// nodes (its kernel modules: see README "Process migration").
package bpmove

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
)

const usage = "usage: bpmove [-n FROM] PID NODE"

// Run is the bpmove applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet("bpmove", usage, stdio.Err)
	from := fs.String("n", "", "PID is a pid on node `FROM`, not a pid on the master")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return &applets.Usage{Line: usage, Msg: "bpmove takes a pid and a node"}
	}
	pid, err := strconv.Atoi(fs.Arg(0))
	if err != nil || pid <= 0 {
		return &applets.Usage{Line: usage, Msg: fmt.Sprintf("bad pid %q", fs.Arg(0))}
	}
	target, err := parseNode(fs.Arg(1))
	if err != nil {
		return &applets.Usage{Line: usage, Msg: err.Error()}
	}
	c, err := bproc.Dial(ctx, "")
	if err != nil {
		return err
	}
	defer c.Close()
	var now int
	src := "pid " + strconv.Itoa(pid)
	if *from != "" {
		n, perr := parseNode(*from)
		if perr != nil {
			return &applets.Usage{Line: usage, Msg: perr.Error()}
		}
		now, err = c.Move(ctx, n, pid, target)
		src = fmt.Sprintf("%d: node %d", pid, n)
	} else {
		var procs []bproc.Proc
		if procs, err = c.Procs(ctx); err == nil {
			for _, p := range procs {
				if p.Ghost == pid || p.Client == pid {
					src = fmt.Sprintf("%d: node %d", pid, p.Node)
					break
				}
			}
			now, err = c.MoveGhost(ctx, pid, target)
		}
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdio.Out, "%s -> node %d (pid %d there)\n", src, target, now)
	return err
}

// parseNode reads a node number: N, .N or nN.
func parseNode(s string) (int, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "."), "n")
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 || t != strconv.Itoa(n) {
		return 0, fmt.Errorf("bad node %q (N, .N or nN)", s)
	}
	return n, nil
}
