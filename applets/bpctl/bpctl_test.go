package bpctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/user"
	"testing"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
)

func lookupUser(name string) (*user.User, error) {
	if name == "forrest" {
		return &user.User{Username: name, Uid: "1000"}, nil
	}
	return nil, user.UnknownUserError(name)
}

func lookupGroup(name string) (*user.Group, error) {
	if name == "hpc" {
		return &user.Group{Name: name, Gid: "9220"}, nil
	}
	return nil, user.UnknownGroupError(name)
}

func u32(v uint32) *uint32 { return &v }

func TestParse(t *testing.T) {
	tests := []struct {
		args   []string
		want   bproc.Control
		addr   bool
		master bool
	}{
		{[]string{"-S", "3", "-s", "up"}, bproc.Control{State: "up"}, false, false},
		{[]string{"-S", "0-4", "-s", "UNAVAILABLE"}, bproc.Control{State: "unavailable"}, false, false},
		{[]string{"-S", "3", "-R"}, bproc.Control{Power: "reboot"}, false, false},
		{[]string{"-S", "3", "-H"}, bproc.Control{Power: "halt"}, false, false},
		{[]string{"-S", "3", "-P"}, bproc.Control{Power: "pwroff"}, false, false},
		{[]string{"-S", "3", "-m", "0110"}, bproc.Control{Mode: u32(0o110)}, false, false},
		{[]string{"-S", "3", "-m", "111"}, bproc.Control{Mode: u32(0o111)}, false, false},
		{[]string{"-S", "3", "-m", "0"}, bproc.Control{Mode: u32(0)}, false, false},
		{[]string{"-S", "3", "-u", "forrest"}, bproc.Control{UID: u32(1000)}, false, false},
		{[]string{"-S", "3", "-u", "1234"}, bproc.Control{UID: u32(1234)}, false, false},
		{[]string{"-S", "3", "-g", "hpc"}, bproc.Control{GID: u32(9220)}, false, false},
		{[]string{"-S", "3", "-g", "0"}, bproc.Control{GID: u32(0)}, false, false},
		{[]string{"-S", "3", "--reconnect"}, bproc.Control{Reconnect: true}, false, false},
		// Given in any order, all in one request; the master applies them in its fixed order.
		{[]string{"-S", "allup", "-g", "hpc", "--reconnect", "-u", "forrest", "-m", "0100", "-R", "-s", "error", "-a"},
			bproc.Control{State: "error", Power: "reboot", Mode: u32(0o100), UID: u32(1000), GID: u32(9220), Reconnect: true}, true, false},
		{[]string{"-S", "-1", "-a"}, bproc.Control{}, true, false},
		{[]string{"-M", "-a"}, bproc.Control{}, true, true},
	}
	for _, tt := range tests {
		o, err := parse(tt.args, io.Discard, lookupUser, lookupGroup)
		if err != nil {
			t.Errorf("bpctl %q: %v", tt.args, err)
			continue
		}
		got, _ := json.Marshal(o.ctl)
		want, _ := json.Marshal(tt.want)
		if !bytes.Equal(got, want) || o.addr != tt.addr || o.master != tt.master {
			t.Errorf("bpctl %q: got %s addr=%v master=%v, want %s addr=%v master=%v", tt.args, got, o.addr, o.master, want, tt.addr, tt.master)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-s", "up"},                 // no -S or -M
		{"-S", "3", "-M", "-a"},      // both
		{"-S", "3"},                  // nothing to do
		{"-S", "3", "-R", "-H"},      // conflicting power
		{"-S", "3", "-H", "-P"},      // conflicting power
		{"-S", "3", "-s", "sleepy"},  // unknown state
		{"-S", "3", "-m", "0888"},    // not octal
		{"-S", "3", "-m", "01111"},   // beyond 0777
		{"-S", "3", "-u", "nobody?"}, // unknown user
		{"-S", "3", "-g", "nogroup?"},
		{"-M", "-s", "up"}, // the master takes only -a
		{"-S", "3", "-s", "up", "extra"},
		{"-S"},
		{"-Z"},
	} {
		_, err := parse(args, io.Discard, lookupUser, lookupGroup)
		var u *applets.Usage
		if !errors.As(err, &u) {
			t.Errorf("bpctl %q: got %v, want a usage error", args, err)
		}
	}
}

func TestWriteAddrs(t *testing.T) {
	st := bproc.Status{MasterAddr: "10.54.0.1", Nodes: []bproc.NodeInfo{
		{Node: 0, Addr: "10.54.0.100"}, {Node: 1}, {Node: 2, Addr: "10.54.0.102"},
	}}
	var b bytes.Buffer
	if err := writeAddrs(&b, st, []int{-1, 2, 1}); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "-1 10.54.0.1\n2 10.54.0.102\n1 -\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := unique([]int{3, 1, 3, 2, 1}); len(got) != 3 || got[0] != 3 || got[1] != 1 || got[2] != 2 {
		t.Errorf("unique: got %v", got)
	}
}
