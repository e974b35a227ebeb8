// Package bpstat implements bpstat, BProc's node status viewer, with
// output meant for scripts as much as for people.
//
//	bpstat [-c|-l|-t|--json|-a -s -m -u -g -n] [-U] [nodespec...]
//	bpstat -p [nodespec...]
//	ps xf | bpstat -P [nodespec...]
//
// Node specs select the nodes shown (default: every compute node); they
// may be mixed with flags and combined single-letter flags (-sn) are
// accepted, as BProc's getopt did. `-1` or `master` adds a row for the
// master itself: state up, its cluster address, mode ---x--x--x, root root.
//
// # Output
//
// Default (-c, compact): one line per group of nodes that share status,
// mode, user and group, the nodes folded into ranges (0-4,7):
//
//	Node(s) Status Mode       User Group
//	5       down   ---------- root root
//	0-4     up     ---x--x--x root root
//
// Groups come in state order down, unavailable, error, up, [up], boot,
// reboot, halt, pwroff, alive (any other state after those), then by their
// lowest node. Columns are separated by one space and padded with spaces
// to the widest value (no tabs, no trailing blanks, no terminal-width
// truncation), so `awk '{print $1}'` and the eye both work; BProc padded to
// the window width instead.
//
// -l (long): `Node Address Status Mode User Group`, one line per node in
// node order, padded the same way. A node without a known address shows
// "-".
//
// -n -a -s -m -u -g: one line per node (node order) with just the fields
// asked for, always in the order number, address, status, mode, user,
// group, separated by one tab: `bpstat -s 3` prints "up", `bpstat -n -s`
// prints "0\tup". An unknown address is "-".
//
// -t: the number of selected nodes.
//
// --json: one document, schema (stable; fields are only ever added):
//
//	{
//	  "master_addr": "10.54.0.1",        // "" if unknown
//	  "nodes": [{
//	    "node": 3,                       // -1 for the master's row
//	    "state": "up",                   // as bpstat -s prints it ("[up]" included)
//	    "addr": "10.54.0.103",           // "" if unknown
//	    "macs": ["52:54:00:00:00:03"],   // [] if none
//	    "mode": "---x--x--x",
//	    "mode_octal": "0111",
//	    "uid": 0, "gid": 0,
//	    "user": "root", "group": "root", // names as the master resolves them
//	    "since": "2024-05-01T12:00:00Z"  // last state change, RFC 3339; null if unknown
//	  }]
//	}
//
// With -U it prints one such object per line, compact, each time something
// changes.
//
// -U: print, then print again on every change the master reports, until
// interrupted (SIGINT or the context). On a terminal the screen is cleared
// before each table (ANSI ESC [H ESC [J); otherwise tables are separated
// by a blank line (JSON objects by nothing but their newline).
//
// -p: remote processes, one per line, tab-separated under a header:
//
//	Ghost	Node	PID	Command
//	1343	0	2345	./hello-world -n 4
//
// Ghost is the pid on the master of the process standing for the remote
// one there — what BProc called the ghost, and what kill, ps and
// bpstat -P know: its ghost (pkg/ghost; node-side children have theirs
// too), or, for a process younger than a few milliseconds, the bpsh (or
// other client) that started it; PID is the process id on the node.
// BProc printed only "PID\tNode", because its ghost and remote process
// shared one pid; here they differ, so both are shown, with the command
// line.
//
// -P: reads ps output on stdin and copies every line, in order, with a
// node column in front. The PID column is the one titled PID in the first
// line (then taken as the header and prefixed with "NODE"); without such a
// header, each line's first numeric field is its pid. A line whose pid is
// a ghost gets the node of its remote process, the line of a client
// (bpsh) the nodes of all its remote processes (folded, "0-4"); every
// other line gets blanks of the same width. After a ghost's line comes one
// line per remote process, BProc style: its node, its remote pid under the
// PID column, and its program name in brackets under the command column,
// drawn as a child in ps's forest style:
//
//	NODE     PID TTY      STAT   TIME COMMAND
//	        1133 pts/2    Ss     0:00 -bash
//	0-1     1343 pts/2    S+     0:00  \_ bpsh 0-1 ./hello-world
//	0       1350 pts/2    S      0:00      \_ ./hello-world [node 0]
//	0       2345                               \_ [hello-world]
//	1       1351 pts/2    S      0:00      \_ ./hello-world [node 1]
//	1       2346                               \_ [hello-world]
//
// The node column is 6 characters wide, or as wide as the widest node list
// when that is wider, plus one space.
package bpstat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/nodespec"
	"golang.org/x/sys/unix"
)

const usage = "usage: bpstat [-c|-l|-t|--json|-n -a -s -m -u -g] [-U] [nodespec...] | bpstat -p|-P [nodespec...]"

// layout is what bpstat prints.
type layout int

const (
	compact layout = iota
	long
	fieldList
	total
	jsonDoc
	procTable
	psAnnotate
)

// field flags, in output order.
type fields struct{ n, a, s, m, u, g bool }

func (f fields) any() bool { return f.n || f.a || f.s || f.m || f.u || f.g }

type opts struct {
	layout layout
	fields fields
	update bool
	specs  []string
}

// Run is the bpstat applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	o, err := parse(args, stdio)
	if err != nil {
		return err
	}
	cl, err := bproc.Dial(ctx, "")
	if err != nil {
		return err
	}
	defer cl.Close()
	switch o.layout {
	case procTable, psAnnotate:
		return procs(ctx, cl, o, stdio)
	}
	if o.update {
		return update(ctx, cl, o, stdio)
	}
	st, err := cl.Status(ctx)
	if err != nil {
		return err
	}
	return show(stdio.Out, st, o, false)
}

// shortFlags are bpstat's single-letter flags, which may be combined.
const shortFlags = "clasmugntpPU"

func parse(args []string, stdio applets.IO) (opts, error) {
	var o opts
	var c, l, t, j, p, P bool
	fs := applets.NewFlagSet("bpstat", usage, stdio.Err)
	fs.BoolVar(&c, "c", false, "compact listing, nodes grouped (default)")
	fs.BoolVar(&l, "l", false, "long listing, one line per node with its address")
	fs.BoolVar(&o.fields.a, "a", false, "print node addresses")
	fs.BoolVar(&o.fields.s, "s", false, "print node status")
	fs.BoolVar(&o.fields.m, "m", false, "print node mode")
	fs.BoolVar(&o.fields.u, "u", false, "print node user")
	fs.BoolVar(&o.fields.g, "g", false, "print node group")
	fs.BoolVar(&o.fields.n, "n", false, "print node numbers")
	fs.BoolVar(&t, "t", false, "print the number of selected nodes")
	fs.BoolVar(&j, "json", false, "print JSON (see the package doc for the schema)")
	fs.BoolVar(&p, "p", false, "list remote processes: ghost pid, node, pid, command")
	fs.BoolVar(&P, "P", false, "read ps output on stdin and show the node of each remote process")
	fs.BoolVar(&o.update, "U", false, "print again on every change until interrupted")
	args = expand(args)
	for {
		if err := applets.ParseFlags(fs, usage, args); err != nil {
			return o, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			o.specs = append(o.specs, rest...)
			break
		}
		o.specs = append(o.specs, rest[0])
		args = rest[1:]
	}
	chosen := 0
	for _, b := range []bool{c, l, o.fields.any(), t, j, p, P} {
		if b {
			chosen++
		}
	}
	if chosen > 1 {
		return o, &applets.Usage{Line: usage, Msg: "choose one of -c, -l, -t, --json, -p, -P and the field flags"}
	}
	switch {
	case l:
		o.layout = long
	case o.fields.any():
		o.layout = fieldList
	case t:
		o.layout = total
	case j:
		o.layout = jsonDoc
	case p:
		o.layout = procTable
	case P:
		o.layout = psAnnotate
	}
	if o.update && (p || P) {
		return o, &applets.Usage{Line: usage, Msg: "-U does not apply to -p or -P"}
	}
	return o, nil
}

// expand splits combined single-letter flags (-sn → -s -n) and turns a
// bare -1 (the master, not a flag) into .-1, which nodespec also reads.
func expand(args []string) []string {
	var out []string
	for i, a := range args {
		switch {
		case a == "--":
			return append(out, args[i:]...)
		case a == "-1":
			out = append(out, ".-1")
		case len(a) > 2 && a[0] == '-' && a[1] != '-' && strings.Trim(a[1:], shortFlags) == "":
			for _, c := range a[1:] {
				out = append(out, "-"+string(c))
			}
		default:
			out = append(out, a)
		}
	}
	return out
}

// pick returns the nodes specs select, each once, in node order; no specs
// selects every compute node. The master (-1) gets a synthesized row.
func pick(st bproc.Status, specs []string) ([]bproc.NodeInfo, error) {
	if len(specs) == 0 {
		return slices.Clone(st.Nodes), nil
	}
	var list []int
	states := bproc.StatesOf(st)
	for _, s := range specs {
		ns, err := nodespec.Parse(s, states)
		if err != nil {
			return nil, err
		}
		list = append(list, ns...)
	}
	slices.Sort(list)
	list = slices.Compact(list)
	rows := make([]bproc.NodeInfo, 0, len(list))
	for _, n := range list {
		switch {
		case n == nodespec.Master:
			rows = append(rows, masterRow(st))
		case n >= 0 && n < len(st.Nodes):
			rows = append(rows, st.Nodes[n])
		}
	}
	return rows, nil
}

// masterRow is the row shown for node -1.
func masterRow(st bproc.Status) bproc.NodeInfo {
	return bproc.NodeInfo{Node: nodespec.Master, State: "up", Addr: st.MasterAddr,
		Mode: uint32(nodes.DefaultMode), User: "root", Group: "root"}
}

// show prints st in o's layout; oneLine asks for compact JSON.
func show(w io.Writer, st bproc.Status, o opts, oneLine bool) error {
	rows, err := pick(st, o.specs)
	if err != nil {
		return err
	}
	switch o.layout {
	case long:
		return writeLong(w, rows)
	case fieldList:
		return writeFields(w, rows, o.fields)
	case total:
		_, err := fmt.Fprintln(w, len(rows))
		return err
	case jsonDoc:
		return writeJSON(w, st.MasterAddr, rows, !oneLine)
	}
	return writeCompact(w, rows)
}

func procs(ctx context.Context, cl *bproc.Client, o opts, stdio applets.IO) error {
	ps, err := cl.Procs(ctx)
	if err != nil {
		return err
	}
	if len(o.specs) > 0 {
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		rows, err := pick(st, o.specs)
		if err != nil {
			return err
		}
		keep := map[int]bool{}
		for _, r := range rows {
			keep[r.Node] = true
		}
		ps = slices.DeleteFunc(ps, func(p bproc.Proc) bool { return !keep[p.Node] })
	}
	if o.layout == procTable {
		return writeProcs(stdio.Out, ps)
	}
	if stdio.In == nil {
		return errors.New("-P reads ps output on stdin")
	}
	return annotate(stdio.Out, stdio.In, ps)
}

// update is -U: the table now and after every change.
func update(ctx context.Context, cl *bproc.Client, o opts, stdio applets.IO) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	st, changes, err := cl.Watch(ctx)
	if err != nil {
		return err
	}
	tty := isTerminal(stdio.Out)
	for first := true; ; first = false {
		switch {
		case tty:
			fmt.Fprint(stdio.Out, "\033[H\033[J")
		case !first && o.layout != jsonDoc:
			fmt.Fprintln(stdio.Out)
		}
		if err := show(stdio.Out, st, o, true); err != nil {
			return err
		}
		// Wait for a change, then take every change already queued so a
		// burst (a rack booting) prints once.
		select {
		case <-ctx.Done():
			return nil
		case n, ok := <-changes:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("the master ended the watch")
			}
			st = apply(st, n)
		}
	drain:
		for {
			select {
			case n, ok := <-changes:
				if !ok {
					break drain
				}
				st = apply(st, n)
			default:
				break drain
			}
		}
	}
}

// apply puts one node's new state into st.
func apply(st bproc.Status, n bproc.NodeInfo) bproc.Status {
	if n.Node < 0 {
		return st
	}
	for len(st.Nodes) <= n.Node {
		st.Nodes = append(st.Nodes, bproc.NodeInfo{Node: len(st.Nodes), State: "down"})
	}
	st.Nodes[n.Node] = n
	return st
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
