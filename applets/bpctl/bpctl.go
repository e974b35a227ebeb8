// Package bpctl implements bpctl, BProc's node control command.
//
//	bpctl -S nodespec [-s state] [-R|-H|-P] [-m mode] [-u user] [-g group] [--forget-key] [--reconnect] [-a]
//	bpctl -M -a
//
// -S names the nodes (any node spec: 3, 0-4, allup, …); -M the master
// (node -1), for which only -a, its address, makes sense.
//
// Actions: -s sets the state (up, unavailable, error; reboot, halt, pwroff
// as -R, -H, -P do), -R reboots, -H halts, -P powers off, -m sets the mode
// (octal, only the execute bits matter: 0111, 111, 0110), -u the owner
// (user name or uid), -g the group (group name or gid), --forget-key drops
// the key the master pinned for the node (a replaced board: its next key
// is trusted on first use, see pkg/master), --reconnect drops the node's
// connection so it reconnects. Whatever order they are given in, they are
// carried out in this order — state, power, mode, user, group, forget-key,
// reconnect — node by node, by one request to the master, which checks
// that the caller is root (or, in a beo sim, the user running it) and
// answers with the first error (printed as it comes: "bpctl: permission
// denied: only root may change nodes").
//
// -a prints each node's address, one line per node, "N ADDR" ("-" when the
// node has none), after the actions if there are any.
//
// A class spec that matches no node (bpctl -S allerror -s up when nothing
// is in error) does nothing and succeeds, so scripts need not check first.
package bpctl

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/user"
	"strconv"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/nodespec"
)

const usage = "usage: bpctl -S nodespec|-M [-s state] [-R|-H|-P] [-m mode] [-u user] [-g group] [--forget-key] [--reconnect] [-a]"

type opts struct {
	spec         string
	master       bool
	state        string
	reboot, halt bool
	pwroff       bool
	mode         string
	user, group  string
	reconnect    bool
	forgetKey    bool
	addr         bool
	ctl          bproc.Control // the actions, resolved
	anyAction    bool
}

// Run is the bpctl applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	o, err := parse(args, stdio.Err, user.Lookup, user.LookupGroup)
	if err != nil {
		return err
	}
	cl, err := bproc.Dial(ctx, "")
	if err != nil {
		return err
	}
	defer cl.Close()
	st, err := cl.Status(ctx)
	if err != nil {
		return err
	}
	list := []int{nodespec.Master}
	if !o.master {
		if list, err = nodespec.Parse(o.spec, bproc.StatesOf(st)); err != nil {
			return err
		}
		list = unique(list)
	}
	if o.anyAction && len(list) > 0 {
		for _, n := range list {
			if n == nodespec.Master {
				return fmt.Errorf("the master (-1) cannot be changed with bpctl")
			}
		}
		ctl := o.ctl
		ctl.Nodes = list
		if err := cl.Control(ctx, ctl); err != nil {
			return err
		}
	}
	if o.addr {
		return writeAddrs(stdio.Out, st, list)
	}
	return nil
}

// parse reads the command line and resolves the actions into o.ctl.
func parse(args []string, errOut io.Writer, lookupUser func(string) (*user.User, error),
	lookupGroup func(string) (*user.Group, error)) (opts, error) {
	var o opts
	fs := applets.NewFlagSet("bpctl", usage, errOut)
	fs.StringVar(&o.spec, "S", "", "the nodes to act on (a node spec)")
	fs.BoolVar(&o.master, "M", false, "act on the master")
	fs.StringVar(&o.state, "s", "", "set the state: up, unavailable, error, reboot, halt, pwroff")
	fs.BoolVar(&o.reboot, "R", false, "reboot")
	fs.BoolVar(&o.halt, "H", false, "halt")
	fs.BoolVar(&o.pwroff, "P", false, "power off")
	fs.StringVar(&o.mode, "m", "", "set the mode (octal; the execute bits matter)")
	fs.StringVar(&o.user, "u", "", "set the owner (user name or uid)")
	fs.StringVar(&o.group, "g", "", "set the group (group name or gid)")
	fs.BoolVar(&o.reconnect, "reconnect", false, "make the node reconnect")
	fs.BoolVar(&o.forgetKey, "forget-key", false, "forget the node's pinned key (a replaced board)")
	fs.BoolVar(&o.addr, "a", false, "print the address of each node")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return o, err
	}
	bad := func(format string, a ...any) (opts, error) {
		return o, &applets.Usage{Line: usage, Msg: fmt.Sprintf(format, a...)}
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case set["S"] && o.master:
		return bad("-S and -M exclude each other")
	case !set["S"] && !o.master:
		return bad("say which nodes: -S nodespec, or -M for the master")
	}
	power := 0
	for _, p := range []struct {
		on   bool
		name string
	}{{o.reboot, "reboot"}, {o.halt, "halt"}, {o.pwroff, "pwroff"}} {
		if p.on {
			power++
			o.ctl.Power = p.name
		}
	}
	if power > 1 {
		return bad("-R, -H and -P exclude each other")
	}
	if set["s"] {
		st, err := nodes.ParseState(o.state)
		if err != nil {
			return bad("-s: %v", err)
		}
		o.ctl.State = st.String()
	}
	if set["m"] {
		m, err := strconv.ParseUint(o.mode, 8, 32)
		if err != nil || m > 0o777 {
			return bad("-m %q: want an octal mode such as 0111", o.mode)
		}
		m32 := uint32(m)
		o.ctl.Mode = &m32
	}
	if set["u"] {
		id, err := resolve(o.user, func(name string) (string, error) {
			u, err := lookupUser(name)
			if err != nil {
				return "", err
			}
			return u.Uid, nil
		})
		if err != nil {
			return bad("-u %q: no such user", o.user)
		}
		o.ctl.UID = &id
	}
	if set["g"] {
		id, err := resolve(o.group, func(name string) (string, error) {
			g, err := lookupGroup(name)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		})
		if err != nil {
			return bad("-g %q: no such group", o.group)
		}
		o.ctl.GID = &id
	}
	o.ctl.Reconnect = o.reconnect
	o.ctl.ForgetKey = o.forgetKey
	o.anyAction = set["s"] || power > 0 || set["m"] || set["u"] || set["g"] || o.reconnect || o.forgetKey
	if o.master && o.anyAction {
		return bad("-M takes only -a: the master's state, mode and owner cannot be changed")
	}
	if !o.anyAction && !o.addr {
		return bad("nothing to do: give an action or -a")
	}
	return o, nil
}

// resolve reads a name (looked up first, as chown does) or a number.
func resolve(s string, lookup func(string) (string, error)) (uint32, error) {
	if s == "" {
		return 0, fmt.Errorf("empty name")
	}
	if id, err := lookup(s); err == nil {
		n, err := strconv.ParseUint(id, 10, 32)
		return uint32(n), err
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

// unique drops repeated nodes, keeping the first of each.
func unique(list []int) []int {
	seen := map[int]bool{}
	out := list[:0:0]
	for _, n := range list {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// writeAddrs prints "N ADDR" for each node in list.
func writeAddrs(w io.Writer, st bproc.Status, list []int) error {
	for _, n := range list {
		a := ""
		switch {
		case n == nodespec.Master:
			a = st.MasterAddr
		case n >= 0 && n < len(st.Nodes):
			a = st.Nodes[n].Addr
		}
		if a == "" {
			a = "-"
		}
		if _, err := fmt.Fprintf(w, "%d %s\n", n, a); err != nil {
			return err
		}
	}
	return nil
}
