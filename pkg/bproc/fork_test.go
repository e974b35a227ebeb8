package bproc

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/beo-cluster/beo/test/testio"
)

// forkID is the id under which the fake master stages a forked copy.
const forkID = 77

// fork plays a process that forks a copy of itself onto node 1 (exec
// stream st): it announces the copy, waits for the client to adopt it,
// prints and ends with status 7 while the copy still runs.
func (m *fakeMaster) fork(st net.Conn, ex *wire.Exec) {
	wire.Write(st, wire.Started{PID: 4242})
	wire.Write(st, wire.Event{Update: &wire.Update{Fork: &wire.Fork{ID: forkID, Node: 1}}})
	select {
	case <-m.adopted:
	case <-time.After(wait):
		m.t.Error("the client did not adopt the copy")
	}
	o := m.open(attach(ex.ID, 1))
	o.Write([]byte("original\n"))
	o.Close()
	wire.Write(st, wire.Result{Status: 7, Opened: wire.OpenedStdout})
}

// copied plays the copy the client adopts: it ends after the original,
// with output and status 5.
func (m *fakeMaster) copied(st net.Conn, ex *wire.Exec) {
	if ex.Node != 1 || !ex.NoStdin || len(ex.Argv) < 2 || ex.Argv[1] != "fork" {
		m.t.Errorf("the copy's exec: node %d, nostdin %v, argv %q; want node 1, no stdin, the original's argv", ex.Node, ex.NoStdin, ex.Argv)
	}
	wire.Write(st, wire.Started{PID: 4242})
	close(m.adopted)
	time.Sleep(200 * time.Millisecond) // the original's Result goes first
	o := m.open(attach(ex.ID, 1))
	o.Write([]byte("copy\n"))
	o.Close()
	wire.Write(st, wire.Result{Status: 5, Opened: wire.OpenedStdout})
}

// TestForkAdopted: a process that forks a copy onto another node (the
// master's Update.Fork) has the copy adopted by its Cmd: an exec naming
// it, on its node, with the original's argv and no stdin; the copy's
// output goes to the Cmd's Stdout, Wait waits for it, and the Cmd's
// status is the original's.
func TestForkAdopted(t *testing.T) {
	c, _ := startFake(t)
	c.NoGhosts()
	var out testio.Buffer
	cmd := c.Command(0, "/bin/true", "fork")
	cmd.Stdout = &out
	err := cmd.Run()
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Status != 7 || ee.Node != 0 {
		t.Errorf("Run: %v; want the original's exit status 7 on node 0", err)
	}
	if got := out.String(); !strings.Contains(got, "original\n") || !strings.Contains(got, "copy\n") {
		t.Errorf("output %q; want the original's and the copy's", got)
	}
}
