package bpctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/user"
	"strings"
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
		{[]string{"-a", "-S", "3"}, bproc.Control{}, true, false}, // before the first -S: its own
		{[]string{"-S", "3", "-s", "up", "-s", "error"}, bproc.Control{State: "error"}, false, false},
		{[]string{"-M", "-a"}, bproc.Control{}, true, true},
	}
	for _, tt := range tests {
		steps, err := parse(tt.args, io.Discard, lookupUser, lookupGroup)
		if err != nil {
			t.Errorf("bpctl %q: %v", tt.args, err)
			continue
		}
		if len(steps) != 1 {
			t.Errorf("bpctl %q: %d steps, want 1", tt.args, len(steps))
			continue
		}
		o := steps[0]
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
		{"-S", "3", "-u", "4294967295"},    // (uid_t)-1
		{"-S", "3", "-s", "up", "-S", "4"}, // the second group does nothing
		{"-S", "3", "-s", "up", "-S", "4", "-R", "-P"},
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

// TestParseSteps: each group's actions act on its own -S (BProc's order).
func TestParseSteps(t *testing.T) {
	steps, err := parse([]string{"-S", "0", "-s", "unavailable", "-S", "1", "-a", "-s", "error", "-M", "-a", "-S", "2-3", "-R"},
		io.Discard, lookupUser, lookupGroup)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range steps {
		got = append(got, fmt.Sprintf("%s addr=%v state=%q power=%q", stepName(s), s.addr, s.ctl.State, s.ctl.Power))
	}
	want := []string{
		`-S 0 addr=false state="unavailable" power=""`,
		`-S 1 addr=true state="error" power=""`,
		`-M addr=true state="" power=""`,
		`-S 2-3 addr=false state="" power="reboot"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	_, err = parse([]string{"-S", "0", "-s", "up", "-S", "1", "-s", "sleepy"}, io.Discard, lookupUser, lookupGroup)
	if err == nil || !strings.Contains(err.Error(), "-S 1: -s") {
		t.Errorf("a bad second group: got %v, want it named", err)
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
