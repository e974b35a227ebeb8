// Package bpcp implements bpcp, BProc's file copy between the master and
// the nodes, and between nodes.
//
//	bpcp [-p] [-r] src... dst
//
// Each operand is a local path or node:path. The node is one node, written
// as bpsh takes it — 3, .3, n3 — and -1, .-1 or master mean the master:
// on the master "master:/etc/hosts" is the local /etc/hosts; on a node
// (bpsh 3 bpcp f master:/tmp/f; the node's bpslave relays bpcp to the
// master) it is the master's, copied through the master as the caller,
// while a plain path is the node's. Naming the master needs the master:
// bpcp fails when it cannot reach it rather than copy anywhere else. An operand whose text
// before the first colon is not a node is a local path ("backup:2024" is a
// file); write ./3:x for a local file really named "3:x". An operand
// whose text before the colon reads as several nodes (3-4:x, all:x) is an
// error: bpcp copies one node's file. A relative node path is taken from
// the caller's working directory, as bpsh runs a command there: in
// /home/u/run, `bpcp data 3:data` writes /home/u/run/data on node 3.
//
// Every copy is one tar stream (pkg/xfer) from the sources to the
// destination: local sources are packed here, node sources are fetched
// from their nodes (Client.Get) and merged into the stream, and the stream
// is unpacked here or sent to the destination node (Client.Put). So
// local→node, node→local, node→node (both through the master) and
// local→local all behave alike, as cp does:
//
//   - dst an existing directory: the sources land inside it.
//   - otherwise one source, which becomes dst (a directory with -r).
//   - several sources need dst to be a directory.
//
// When every source is local and the destination is a node, the master
// packs the sources itself (Client.PutFiles): they are checked here first,
// as always, then sent as absolute paths, and bpmaster reads them with
// the caller's filesystem identity (pkg/creds), so the kernel's
// permission checks decide as they would for bpcp itself. The bytes then
// go file → bpmaster → node instead of through bpcp and the master's
// socket first: one process hop and its copies fewer, most of the cost
// of a large copy on the head node. A failure found only by the master
// (a file vanishing meanwhile) names the file by its absolute path. A
// master that cannot act as the caller (not root), a caller in another
// mount namespace, and paths that could name another file in another
// process (a ".." element, /proc, /dev) take the path above.
//
// -r copies directories recursively (symbolic links inside are copied as
// links); -p preserves mode and mtime, and uid/gid when the writing side
// runs as root (on a node: when the caller is root). Without -p a file
// takes its source's mode masked by 0777 and the current time.
//
// Files land whole or not at all: each one is written to a temporary file
// beside its target and renamed over it only once the whole stream has
// arrived intact, so an interrupted copy (Ctrl-C, a node going down, an
// unreadable source) leaves every old file as it was and no temporary
// behind — even a receiver killed outright, where the filesystem can hold
// a file's data without a name while it arrives (pkg/xfer). Local sources are checked (exist, readable, -r for directories)
// before anything is sent.
//
// Errors name the node and the file: "bpcp: node 3: /tmp/x: no such file
// or directory"; local ones just the file.
package bpcp

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/nodespec"
	"github.com/beo-cluster/beo/pkg/xfer"
)

const usage = "usage: bpcp [-p] [-r] src... dst   (src and dst: path or node:path)"

// operand is one file argument.
type operand struct {
	node int // nodespec.Master for a local path
	path string
	spec string // the node as written, for checking it exists
	// viaMaster: the master's file, reached through it — master:PATH
	// written on a node, where the local file system is the node's.
	viaMaster bool
}

func (o operand) local() bool { return o.node == nodespec.Master && !o.viaMaster }

// namesMaster reports whether o names the master explicitly (master:,
// -1:, .-1:).
func (o operand) namesMaster() bool { return o.node == nodespec.Master && o.spec != "" }

// Run is the bpcp applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	var opts xfer.Options
	fs := applets.NewFlagSet("bpcp", usage, stdio.Err)
	fs.BoolVar(&opts.Preserve, "p", false, "preserve mode and mtime (and owner as root)")
	fs.BoolVar(&opts.Recursive, "r", false, "copy directories recursively")
	args = slices.Clone(args)
	for i, a := range args {
		if rest, ok := strings.CutPrefix(a, "-1:"); ok {
			args[i] = ".-1:" + rest // the master, not a flag
		}
	}
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return &applets.Usage{Line: usage, Msg: "need a source and a destination"}
	}
	cwd, _ := os.Getwd()
	var ops []operand
	for _, a := range fs.Args() {
		op, err := parseOperand(a)
		if err != nil {
			return &applets.Usage{Line: usage, Msg: err.Error()}
		}
		if op.spec != "" && !path.IsAbs(op.path) && cwd != "" {
			slash := strings.HasSuffix(op.path, "/") // "must be a directory" (pkg/xfer)
			op.path = path.Join(cwd, op.path)        // as bpsh runs there
			if slash {
				op.path += "/"
			}
		}
		ops = append(ops, op)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	err := copyFiles(ctx, ops[:len(ops)-1], ops[len(ops)-1], opts)
	if err != nil && ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return err
}

// parseOperand splits node:path; see the package doc.
func parseOperand(s string) (operand, error) {
	if s == "" {
		return operand{}, errors.New("empty file name")
	}
	prefix, file, ok := strings.Cut(s, ":")
	if !ok {
		return operand{node: nodespec.Master, path: s}, nil
	}
	n, isNode := singleNode(prefix)
	if !isNode {
		if nodeList(prefix) {
			return operand{}, fmt.Errorf("%s: bpcp copies to and from one node at a time, not %q (write ./%s for a local file)", s, prefix, s)
		}
		return operand{node: nodespec.Master, path: s}, nil
	}
	if file == "" {
		return operand{}, fmt.Errorf("%s: no path after the node", s)
	}
	return operand{node: n, path: file, spec: prefix}, nil
}

// nodeList reports whether s reads as a node spec of several nodes (3-4,
// 0,2, .1-.3, all, allup) rather than a file name.
func nodeList(s string) bool {
	l := strings.ToLower(s)
	if class, ok := strings.CutPrefix(l, "all"); ok {
		class = strings.TrimPrefix(class, "not")
		if _, err := nodes.ParseState(class); class == "" || err == nil {
			return true
		}
	}
	return strings.ContainsAny(l, "0123456789") && strings.ContainsAny(l, ",-") && strings.Trim(l, "0123456789.n,-") == ""
}

// singleNode reads one node as bpsh's node specs write it: N, .N, nN,
// -1, .-1, master.
func singleNode(s string) (int, bool) {
	switch strings.ToLower(s) {
	case "-1", ".-1", "master":
		return nodespec.Master, true
	}
	digits := s
	if len(s) > 1 && (s[0] == '.' || s[0] == 'n' || s[0] == 'N') {
		digits = s[1:]
	}
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil
}

// copyFiles streams srcs to dst.
func copyFiles(ctx context.Context, srcs []operand, dst operand, opts xfer.Options) error {
	// master:PATH must be the master's file: on a node it is reached
	// through the master, so it needs the master, as any node does.
	var cl *bproc.Client
	onNode := false
	all := append([]operand{dst}, srcs...)
	if !allLocal(all) || anyNamesMaster(all) {
		var err error
		if cl, err = dial(ctx, all); err != nil {
			return err
		}
		defer cl.Close()
	}
	if anyNamesMaster(all) {
		where, err := cl.Where(ctx)
		if err != nil {
			return err
		}
		if onNode = where != nodespec.Master; onNode {
			for i := range srcs {
				srcs[i].viaMaster = srcs[i].namesMaster()
			}
			dst.viaMaster = dst.namesMaster()
		}
	}
	if len(srcs) > 1 && dst.local() {
		if fi, err := os.Stat(dst.path); err != nil || !fi.IsDir() {
			return fmt.Errorf("%s: not a directory (several sources)", dst.path)
		}
	}
	if err := distinct(srcs); err != nil {
		return err
	}
	// Local sources are checked before a byte moves.
	plans := make([]*xfer.Plan, len(srcs))
	for i, s := range srcs {
		if s.local() {
			p, err := xfer.Scan([]string{s.path}, opts)
			if err != nil {
				return err
			}
			plans[i] = p
		}
	}
	if !dst.local() && allLocal(srcs) && !onNode { // from a node the master cannot read our files
		if abs, ok := masterSources(srcs); ok {
			err := cl.PutFiles(ctx, bproc.File{Node: dst.node, Path: dst.path, Recursive: opts.Recursive, Preserve: opts.Preserve, Sources: abs})
			if !errors.Is(err, bproc.ErrSourcesRefused) {
				return err
			}
			// This master cannot read them as us: send them ourselves.
		}
	}

	pr, pw := io.Pipe()
	stopCancel := context.AfterFunc(ctx, func() {
		pr.CloseWithError(ctx.Err())
		pw.CloseWithError(ctx.Err())
	})
	defer stopCancel()
	pctx, stopProducer := context.WithCancel(ctx)
	defer stopProducer()
	produced := make(chan error, 1)
	go func() {
		// The error is posted before the stream ends, so a receiver that
		// fails on the short stream finds the cause already there. A
		// failed source ends the stream without its end marker, which the
		// receiving side treats as a failed copy; a plain close (not
		// CloseWithError) lets a Put finish its exchange with the node.
		produced <- produce(pctx, cl, pw, srcs, plans, opts)
		pw.Close()
	}()
	var cerr error
	if dst.local() {
		cerr = xfer.Unpack(pr, dst.path, opts)
	} else {
		cerr = cl.Put(ctx, bproc.File{Node: dst.node, Path: dst.path, Recursive: opts.Recursive, Preserve: opts.Preserve}, pr)
	}
	select {
	case perr := <-produced: // the sending side finished first
		if perr != nil {
			return perr // the cause; the receiver only saw a short stream
		}
		return cerr
	default:
	}
	if cerr != nil { // the receiver gave up: stop the sending side
		pr.CloseWithError(io.ErrClosedPipe)
		stopProducer()
		select {
		case <-produced:
		case <-ctx.Done(): // interrupted: do not wait for a node that may never answer
		}
		return cerr
	}
	return <-produced
}

// distinct refuses two sources that would land under the same name.
func distinct(srcs []operand) error {
	seen := map[string]operand{}
	for _, s := range srcs {
		name := path.Base(path.Clean("/" + filepath.ToSlash(s.path)))
		if s.local() {
			abs, err := filepath.Abs(s.path)
			if err != nil {
				return fmt.Errorf("%s: %w", s.path, err)
			}
			name = filepath.Base(abs)
		}
		if prev, ok := seen[name]; ok {
			return fmt.Errorf("%s and %s would both land as %s", prev, s, name)
		}
		seen[name] = s
	}
	return nil
}

func (o operand) String() string {
	if o.local() {
		return o.path
	}
	return fmt.Sprintf("%d:%s", o.node, o.path)
}

// masterSources returns the local sources as the absolute paths the
// master reads them by (Client.PutFiles), or false when a path might name
// another file there: one with a ".." element (filepath.Abs drops "x/.."
// as text, the kernel follows a symbolic link x first), or one that leads
// into /proc or /dev, whose files (/proc/self/…, /dev/stdin) depend on
// the process reading them. The archive name, the last element of the
// absolute path (xfer), is the same either way.
func masterSources(srcs []operand) ([]string, bool) {
	abs := make([]string, len(srcs))
	for i, s := range srcs {
		if slices.Contains(strings.Split(filepath.ToSlash(s.path), "/"), "..") {
			return nil, false
		}
		a, err := filepath.Abs(s.path)
		if err != nil {
			return nil, false
		}
		real, err := filepath.EvalSymlinks(a)
		if err != nil {
			return nil, false
		}
		for _, p := range []string{a, real} {
			for _, dir := range []string{"/proc", "/dev"} {
				if p == dir || strings.HasPrefix(p, dir+"/") {
					return nil, false
				}
			}
		}
		abs[i] = a
	}
	return abs, true
}

func anyNamesMaster(ops []operand) bool {
	for _, o := range ops {
		if o.namesMaster() {
			return true
		}
	}
	return false
}

func allLocal(ops []operand) bool {
	for _, o := range ops {
		if !o.local() {
			return false
		}
	}
	return true
}

// dial connects to the master and checks that every node named exists.
func dial(ctx context.Context, ops []operand) (*bproc.Client, error) {
	cl, err := bproc.Dial(ctx, "")
	if err != nil {
		return nil, err
	}
	st, err := cl.States(ctx)
	if err != nil {
		cl.Close()
		return nil, err
	}
	for _, o := range ops {
		if o.local() {
			continue
		}
		if _, err := nodespec.Parse(o.spec, st); err != nil {
			cl.Close()
			return nil, err
		}
	}
	return cl, nil
}

// produce writes every source, in order, to w as one tar stream.
func produce(ctx context.Context, cl *bproc.Client, w io.Writer, srcs []operand, plans []*xfer.Plan, opts xfer.Options) error {
	tw := tar.NewWriter(w)
	for i, s := range srcs {
		if s.local() {
			if err := plans[i].Add(tw); err != nil {
				return err
			}
			continue
		}
		rc, err := cl.Get(ctx, bproc.File{Node: s.node, Path: s.path, Recursive: opts.Recursive, Preserve: opts.Preserve})
		if err != nil {
			return err
		}
		stop := context.AfterFunc(ctx, func() { rc.Close() }) // unblock a read from a stuck node
		err = xfer.Append(tw, rc)
		stop()
		rc.Close()
		if errors.Is(err, xfer.ErrTruncated) {
			return fmt.Errorf("node %d: %s: %w", s.node, s.path, err)
		}
		if err != nil {
			return err
		}
	}
	return tw.Close()
}
