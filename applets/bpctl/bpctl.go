// Package bpctl implements bpctl, BProc's node control command.
//
//	bpctl -S nodespec [-s state] [-R|-H|-P] [-m mode] [-u user] [-g group] [--forget-key] [--reconnect] [-a] [-S nodespec …]
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
// connection so it reconnects.
//
// As in BProc, the actions act on the nodes of the -S (or -M) before
// them: `bpctl -S 0 -s unavailable -S 1 -s error` makes node 0
// unavailable and node 1 in error. Actions given before the first -S
// belong to it. The -S groups are carried out one after another, each
// after reading the node table again (so `-S allerror` sees what the
// group before it did); within a group, whatever order the actions are
// given in, they are carried out in this order — state, power, mode,
// user, group, forget-key, reconnect — node by node, by one request to
// the master, which checks that the caller is root (or, in a beo sim, the
// user running it) and answers with the first error (printed as it comes:
// "bpctl: permission denied: only root may change nodes"). An action given
// twice in one group counts once, with its last value. Every group is
// checked before the first is carried out, so a typo in the last group
// changes nothing.
//
// -a prints each node's address, one line per node, "N ADDR" ("-" when the
// node has none), after the actions if there are any.
//
// A class spec that matches no node (bpctl -S allerror -s up when nothing
// is in error) does nothing and succeeds, so scripts need not check first.
package bpctl

import (
	"context"
	"fmt"
	"io"
	"os/user"
	"strconv"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/nodespec"
)

const usage = "usage: bpctl -S nodespec|-M [-s state] [-R|-H|-P] [-m mode] [-u user] [-g group] [--forget-key] [--reconnect] [-a] [-S nodespec … ]"

// step is one -S (or -M) and the actions given after it, up to the next
// -S or -M.
type step struct {
	spec      string
	master    bool
	set       map[string]string // the flags given, by name: the last value of each
	ctl       bproc.Control     // the actions, resolved
	anyAction bool
	addr      bool
}

// Run is the bpctl applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	steps, err := parse(args, stdio.Err, user.Lookup, user.LookupGroup)
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
	for _, s := range steps { // a bad spec anywhere changes nothing
		if !s.master {
			if _, err := nodespec.Parse(s.spec, bproc.StatesOf(st)); err != nil {
				return err
			}
		}
	}
	for _, s := range steps {
		if err := s.run(ctx, cl, stdio.Out); err != nil {
			return err
		}
	}
	return nil
}

// run carries out one step. The status is read for each: a step's spec
// (allup, allerror, …) sees what the steps before it changed.
func (s step) run(ctx context.Context, cl *bproc.Client, out io.Writer) error {
	st, err := cl.Status(ctx)
	if err != nil {
		return err
	}
	list := []int{nodespec.Master}
	if !s.master {
		if list, err = nodespec.Parse(s.spec, bproc.StatesOf(st)); err != nil {
			return err
		}
		list = unique(list)
	}
	if s.anyAction && len(list) > 0 {
		for _, n := range list {
			if n == nodespec.Master {
				return fmt.Errorf("the master (-1) cannot be changed with bpctl")
			}
		}
		ctl := s.ctl
		ctl.Nodes = list
		if err := cl.Control(ctx, ctl); err != nil {
			return err
		}
	}
	if s.addr {
		return writeAddrs(out, st, list)
	}
	return nil
}

// actionFlags are bpctl's actions that take a value, and boolFlags those
// that do not, with their help.
var (
	actionFlags = []struct{ name, help string }{
		{"s", "set the state: up, unavailable, error, reboot, halt, pwroff"},
		{"m", "set the mode (octal; the execute bits matter)"},
		{"u", "set the owner (user name or uid)"},
		{"g", "set the group (group name or gid)"},
	}
	boolFlags = []struct{ name, help string }{
		{"R", "reboot"},
		{"H", "halt"},
		{"P", "power off"},
		{"reconnect", "make the node reconnect"},
		{"forget-key", "forget the node's pinned key (a replaced board)"},
		{"a", "print the address of each node"},
	}
)

// parse reads the command line into its steps, each with its actions
// resolved. Actions given before the first -S or -M belong to it.
func parse(args []string, errOut io.Writer, lookupUser func(string) (*user.User, error),
	lookupGroup func(string) (*user.Group, error)) ([]step, error) {
	var steps []step
	var pending map[string]string // actions before the first -S/-M
	cur := func() map[string]string {
		if len(steps) == 0 {
			if pending == nil {
				pending = map[string]string{}
			}
			return pending
		}
		return steps[len(steps)-1].set
	}
	begin := func(s step) {
		s.set = map[string]string{}
		if len(steps) == 0 {
			for k, v := range pending {
				s.set[k] = v
			}
		}
		steps = append(steps, s)
	}
	fs := applets.NewFlagSet("bpctl", usage, errOut)
	fs.Func("S", "the nodes the actions after it act on (a node spec)", func(v string) error {
		begin(step{spec: v})
		return nil
	})
	fs.BoolFunc("M", "act on the master", func(string) error {
		begin(step{master: true})
		return nil
	})
	for _, f := range actionFlags {
		fs.Func(f.name, f.help, func(v string) error {
			cur()[f.name] = v
			return nil
		})
	}
	for _, f := range boolFlags {
		fs.BoolFunc(f.name, f.help, func(string) error {
			cur()[f.name] = "true"
			return nil
		})
	}
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, &applets.Usage{Line: usage, Msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if len(steps) == 0 {
		return nil, &applets.Usage{Line: usage, Msg: "say which nodes: -S nodespec, or -M for the master"}
	}
	for i := range steps {
		if err := steps[i].resolve(lookupUser, lookupGroup); err != nil {
			if len(steps) > 1 {
				err.Msg = stepName(steps[i]) + ": " + err.Msg
			}
			return nil, err
		}
	}
	return steps, nil
}

// stepName names a step in an error: "-S 3" or "-M".
func stepName(s step) string {
	if s.master {
		return "-M"
	}
	return "-S " + s.spec
}

// resolve checks s's actions and fills in s.ctl.
func (s *step) resolve(lookupUser func(string) (*user.User, error),
	lookupGroup func(string) (*user.Group, error)) *applets.Usage {
	bad := func(format string, a ...any) *applets.Usage {
		return &applets.Usage{Line: usage, Msg: fmt.Sprintf(format, a...)}
	}
	set := s.set
	power := 0
	for _, p := range []struct{ flag, name string }{{"R", "reboot"}, {"H", "halt"}, {"P", "pwroff"}} {
		if _, on := set[p.flag]; on {
			power++
			s.ctl.Power = p.name
		}
	}
	if power > 1 {
		return bad("-R, -H and -P exclude each other")
	}
	if v, ok := set["s"]; ok {
		st, err := nodes.ParseState(v)
		if err != nil {
			return bad("-s: %v", err)
		}
		s.ctl.State = st.String()
	}
	if v, ok := set["m"]; ok {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m > 0o777 {
			return bad("-m %q: want an octal mode such as 0111", v)
		}
		m32 := uint32(m)
		s.ctl.Mode = &m32
	}
	if v, ok := set["u"]; ok {
		id, err := resolve(v, func(name string) (string, error) {
			u, err := lookupUser(name)
			if err != nil {
				return "", err
			}
			return u.Uid, nil
		})
		if err != nil {
			return bad("-u %q: no such user", v)
		}
		s.ctl.UID = &id
	}
	if v, ok := set["g"]; ok {
		id, err := resolve(v, func(name string) (string, error) {
			g, err := lookupGroup(name)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		})
		if err != nil {
			return bad("-g %q: no such group", v)
		}
		s.ctl.GID = &id
	}
	_, s.ctl.Reconnect = set["reconnect"]
	_, s.ctl.ForgetKey = set["forget-key"]
	_, s.addr = set["a"]
	s.anyAction = s.ctl.State != "" || power > 0 || s.ctl.Mode != nil || s.ctl.UID != nil || s.ctl.GID != nil || s.ctl.Reconnect || s.ctl.ForgetKey
	if s.master && s.anyAction {
		return bad("-M takes only -a: the master's state, mode and owner cannot be changed")
	}
	if !s.anyAction && !s.addr {
		return bad("nothing to do: give an action or -a")
	}
	return nil
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
	if err == nil && n == 1<<32-1 {
		// (uid_t)-1 is chown's "leave unchanged", no one's id.
		return 0, fmt.Errorf("%d is no id", n)
	}
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
