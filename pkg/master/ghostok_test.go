package master

import (
	"os"
	"os/exec"
	"testing"

	"github.com/beo-cluster/beo/pkg/wire"
)

// TestGhostOK: a client on the master may name only its own children as
// ghosts; a client on a node, no other user's ghost.
func TestGhostOK(t *testing.T) {
	kid := exec.Command("sleep", "30")
	if err := kid.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { kid.Process.Kill(); kid.Wait() }()
	m := &Master{procs: map[uint64]*relay{}}
	local := &relay{owner: 1000, proc: wire.Proc{Client: os.Getpid()}}
	if !m.ghostOK(local, kid.Process.Pid) {
		t.Error("its own child refused")
	}
	if m.ghostOK(local, 1) || m.ghostOK(local, os.Getpid()) {
		t.Error("a pid that is not its child accepted")
	}
	other := &relay{owner: 2000, proc: wire.Proc{Ghost: 4242}, kids: map[int]*wire.Proc{7: {Ghost: 4343}}}
	m.procs[1] = other
	remote := &relay{owner: 1000}
	for _, g := range []int{4242, 4343} {
		if m.ghostOK(remote, g) {
			t.Errorf("a node client claimed another user's ghost %d", g)
		}
	}
	if !m.ghostOK(remote, 4444) {
		t.Error("a node client's own ghost refused")
	}
}
