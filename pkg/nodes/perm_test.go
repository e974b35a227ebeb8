package nodes

import (
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/beo-cluster/beo/pkg/wire"
)

func TestCanRun(t *testing.T) {
	const alice, bob, carol, users, staff = 1000, 1001, 1002, 100, 50
	node := func(s State, mode os.FileMode) Node {
		return Node{Num: 3, State: s, Owner: alice, Group: users, Mode: mode}
	}
	root := wire.Cred{UID: 0, GID: 0}
	aliceC := wire.Cred{UID: alice, GID: users}
	bobC := wire.Cred{UID: bob, GID: users}                             // in the node's group by gid
	bobSupp := wire.Cred{UID: bob, GID: staff, Groups: []uint32{users}} // … by supplementary group
	carolC := wire.Cred{UID: carol, GID: staff, Groups: []uint32{7, 8}} // other
	tests := []struct {
		name string
		node Node
		cred wire.Cred
		want error  // nil, or the error errors.Is must match
		msg  string // the whole message, if want != nil
	}{
		{"default mode: other", node(Up, DefaultMode), carolC, nil, ""},
		{"owner bit set", node(Up, 0100), aliceC, nil, ""},
		{"owner bit only, group member", node(Up, 0100), bobC, fs.ErrPermission,
			"node 3: permission denied (mode ---x------, owner 1000, group 100)"},
		{"owner bit only, other", node(Up, 0100), carolC, fs.ErrPermission,
			"node 3: permission denied (mode ---x------, owner 1000, group 100)"},
		{"owner without owner bit, group and other set", node(Up, 0011), aliceC, fs.ErrPermission,
			"node 3: permission denied (mode ------x--x, owner 1000, group 100)"},
		{"group bit by gid", node(Up, 0010), bobC, nil, ""},
		{"group bit by supplementary group", node(Up, 0010), bobSupp, nil, ""},
		{"group without group bit, other set", node(Up, 0101), bobSupp, fs.ErrPermission,
			"node 3: permission denied (mode ---x-----x, owner 1000, group 100)"},
		{"other bit", node(Up, 0001), carolC, nil, ""},
		{"other without other bit", node(Up, 0110), carolC, fs.ErrPermission,
			"node 3: permission denied (mode ---x--x---, owner 1000, group 100)"},
		{"mode 0 shuts out users", node(Up, 0), aliceC, fs.ErrPermission,
			"node 3: permission denied (mode ----------, owner 1000, group 100)"},
		{"root ignores mode", node(Up, 0), root, nil, ""},
		{"root on boot", node(Boot, 0), root, nil, ""},
		{"root on error", node(Error, 0), root, nil, ""},
		{"root on unavailable", node(Unavailable, 0), root, nil, ""},
		{"root on down", node(Down, DefaultMode), root, ErrNotAvailable, "node 3: not available (down)"},
		{"root on reboot", node(Reboot, DefaultMode), root, ErrNotAvailable, "node 3: not available (reboot)"},
		{"root on halt", node(Halt, DefaultMode), root, ErrNotAvailable, "node 3: not available (halt)"},
		{"root on pwroff", node(Pwroff, DefaultMode), root, ErrNotAvailable, "node 3: not available (pwroff)"},
		{"root on alive", node(Alive, DefaultMode), root, ErrNotAvailable, "node 3: not available (alive)"},
		{"user on down", node(Down, DefaultMode), aliceC, ErrNotAvailable, "node 3: not available to users (down)"},
		{"user on boot", node(Boot, DefaultMode), aliceC, ErrNotAvailable, "node 3: not available to users (boot)"},
		{"user on error", node(Error, DefaultMode), aliceC, ErrNotAvailable, "node 3: not available to users (error)"},
		{"user on unavailable", node(Unavailable, DefaultMode), aliceC, ErrNotAvailable,
			"node 3: not available to users (unavailable)"},
		{"user on alive", node(Alive, DefaultMode), aliceC, ErrNotAvailable, "node 3: not available to users (alive)"},
		{"user on [up]", Node{Num: 3, State: Up, Mode: DefaultMode, Secondary: true}, aliceC, ErrSecondary,
			"node 3: controlled by another master ([up])"},
		{"root on [up]", Node{Num: 3, State: Up, Mode: DefaultMode, Secondary: true}, root, ErrSecondary,
			"node 3: controlled by another master ([up])"},
	}
	for _, tt := range tests {
		err := tt.node.CanRun(tt.cred)
		switch {
		case tt.want == nil && err != nil:
			t.Errorf("%s: CanRun: %v, want nil", tt.name, err)
		case tt.want != nil && !errors.Is(err, tt.want):
			t.Errorf("%s: CanRun: %v, want %v", tt.name, err, tt.want)
		case tt.want != nil && err.Error() != tt.msg:
			t.Errorf("%s: CanRun: %q, want %q", tt.name, err, tt.msg)
		}
	}
}

func TestTableCanRun(t *testing.T) {
	tab := New(nil, Node{Num: 0})
	must(t, tab.SetState(System, 0, Boot))
	must(t, tab.SetState(System, 0, Up))
	must(t, tab.SetMode(Admin, 0, 0100))
	if err := tab.CanRun(wire.Cred{UID: 5}, 0); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("CanRun(uid 5, 0) = %v, want fs.ErrPermission", err)
	}
	if err := tab.CanRun(wire.Cred{UID: 0}, 0); err != nil {
		t.Errorf("CanRun(root, 0) = %v, want nil", err)
	}
	err := tab.CanRun(wire.Cred{UID: 0}, 1)
	if !errors.Is(err, ErrNoNode) || err.Error() != "node 1: no such node (cluster has 1 node)" {
		t.Errorf("CanRun(root, 1) = %v, want ErrNoNode", err)
	}
}

func TestOwnerGroupMode(t *testing.T) {
	tab := New(nil, Node{Num: 0})
	for _, a := range []Actor{User, System} {
		for name, err := range map[string]error{
			"SetOwner": tab.SetOwner(a, 0, 1),
			"SetGroup": tab.SetGroup(a, 0, 1),
			"SetMode":  tab.SetMode(a, 0, 0),
		} {
			if !errors.Is(err, fs.ErrPermission) {
				t.Errorf("%s as %s: %v, want fs.ErrPermission", name, a, err)
			}
		}
	}
	must(t, tab.SetOwner(Admin, 0, 1000))
	must(t, tab.SetGroup(Admin, 0, 100))
	must(t, tab.SetMode(Admin, 0, 0755|os.ModeSetuid))
	got, _ := tab.Get(0)
	if got.Owner != 1000 || got.Group != 100 || got.Mode != 0111 {
		t.Errorf("node = owner %d group %d mode %o, want 1000 100 0111", got.Owner, got.Group, got.Mode)
	}
	if err := tab.SetOwner(Admin, 9, 1); !errors.Is(err, ErrNoNode) {
		t.Errorf("SetOwner(Admin, 9): %v, want ErrNoNode", err)
	}
}

func TestFormatMode(t *testing.T) {
	tests := []struct {
		mode os.FileMode
		want string
	}{
		{0111, "---x--x--x"},
		{0, "----------"},
		{0100, "---x------"},
		{0010, "------x---"},
		{0001, "---------x"},
		{0777, "---x--x--x"},
		{0644, "----------"},
		{0751 | os.ModeDir | os.ModeSetuid, "---x--x--x"},
	}
	for _, tt := range tests {
		if got := FormatMode(tt.mode); got != tt.want {
			t.Errorf("FormatMode(%o) = %q, want %q", tt.mode, got, tt.want)
		}
	}
}
