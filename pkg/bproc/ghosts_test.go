package bproc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/ghost"
	"github.com/beo-cluster/beo/pkg/wire"
)

// ghosts plays a job with a child, on the exec stream st: it reports
// what the client sends (frames) and ends the job when told (proceed).
func (m *fakeMaster) ghosts(st net.Conn) {
	st.SetDeadline(time.Time{})
	read := func() {
		var s wire.Signal
		if err := wire.Read(st, &s); err != nil {
			m.t.Errorf("fake master: %v", err)
			return
		}
		m.frames <- s
	}
	wire.Write(st, wire.Started{PID: 4242})
	read() // the job's ghost
	wire.Write(st, wire.Event{Update: &wire.Update{Procs: []wire.ProcChange{{PID: 4343, Argv: []string{"kid", "-x"}}}}})
	read() // the child's
	read() // a signal to the job's process
	read() // one to the child
	wire.Write(st, wire.Event{Update: &wire.Update{Procs: []wire.ProcChange{{PID: 4242, Argv: []string{"newprog", "y"}}}}})
	wire.Write(st, wire.Event{Update: &wire.Update{Procs: []wire.ProcChange{{PID: 4444, Argv: []string{"kid2"}}}}})
	read() // its ghost
	<-m.kidGone
	wire.Write(st, wire.Event{Update: &wire.Update{Procs: []wire.ProcChange{{PID: 4444, Gone: true, Status: 4}}}})
	<-m.proceed
	wire.Write(st, wire.Result{Status: 3})
}

func procFile(pid int, name string) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
	return strings.ReplaceAll(strings.TrimSuffix(string(b), "\x00"), "\x00", " ")
}

// TestGhosts: the client starts a ghost for the job's process and for
// the child its node reports, tells the master their pids, forwards
// their signals to the right remote process, shows an exec, and ends
// each ghost as its process ended.
func TestGhosts(t *testing.T) {
	var probe ghost.Spawner
	if err := probe.Check(); err != nil {
		t.Skip(err)
	}
	c, m := startFake(t)
	cmd := c.Command(0, "/bin/true", "ghost")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	frame := func() wire.Signal {
		select {
		case s := <-m.frames:
			return s
		case <-time.After(wait):
			t.Fatal("no frame from the client")
		}
		return wire.Signal{}
	}
	main := frame()
	if main.Sig != 0 || main.PID != 4242 || main.Ghost == 0 {
		t.Fatalf("first frame %+v: want the ghost of pid 4242", main)
	}
	if got := procFile(main.Ghost, "cmdline"); got != "/bin/true ghost [node 0]" {
		t.Errorf("the ghost's command line: %q", got)
	}
	if got := procFile(main.Ghost, "environ"); got != "BPROC_NODE=0 BPROC_PID=4242" {
		t.Errorf("the ghost's environment: %q", got)
	}
	deadline := time.Now().Add(wait)
	stat := func() []byte { b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", main.Ghost)); return b }
	for !bytes.Contains(stat(), []byte(") S ")) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if b := stat(); !bytes.Contains(b, []byte(") S "+strconv.Itoa(os.Getpid())+" ")) {
		t.Errorf("the ghost's stat %q: want sleeping, a child of this process", b)
	}
	kid := frame()
	if kid.PID != 4343 || kid.Ghost == 0 || procFile(kid.Ghost, "cmdline") != "kid -x [node 0]" {
		t.Fatalf("second frame %+v (%q): want the ghost of the child 4343", kid, procFile(kid.Ghost, "cmdline"))
	}
	syscall.Kill(main.Ghost, syscall.SIGUSR1)
	if s := frame(); s.Sig != int(syscall.SIGUSR1) || s.PID != 4242 {
		t.Errorf("forwarded %+v, want SIGUSR1 to 4242", s)
	}
	syscall.Kill(kid.Ghost, syscall.SIGTERM)
	if s := frame(); s.Sig != int(syscall.SIGTERM) || s.PID != 4343 {
		t.Errorf("forwarded %+v, want SIGTERM to 4343", s)
	}
	deadline = time.Now().Add(wait)
	for procFile(main.Ghost, "cmdline") != "newprog y [node 0]" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := procFile(main.Ghost, "cmdline"); got != "newprog y [node 0]" {
		t.Errorf("after the exec the ghost shows %q", got)
	}
	if k2 := frame(); k2.PID != 4444 || k2.Ghost == 0 {
		t.Fatalf("frame %+v: want the ghost of the second child 4444", k2)
	}
	cmd.gh.mu.Lock()
	kid2G := cmd.gh.kids[4444]
	cmd.gh.mu.Unlock()
	close(m.kidGone)
	if ws, err := kid2G.Status(); err != nil || !ws.Exited() || ws.ExitStatus() != 4 {
		t.Errorf("the second child's ghost ended %v %v; want exit status 4, as the child (its node's report)", ws, err)
	}
	cmd.gh.mu.Lock()
	mainG, kidG := cmd.gh.main, cmd.gh.kids[4343]
	cmd.gh.mu.Unlock()
	close(m.proceed)
	var ee *ExitError
	if err := <-waited; !errors.As(err, &ee) || ee.Status != 3 {
		t.Fatalf("Wait: %v, want exit status 3", err)
	}
	if ws, err := mainG.Status(); err != nil || !ws.Exited() || ws.ExitStatus() != 3 {
		t.Errorf("the job's ghost ended %v %v; want exit status 3, as its process", ws, err)
	}
	if ws, err := kidG.Status(); err != nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("the child's ghost ended %v %v; want killed with the job", ws, err)
	}
}

// TestKidGhostsBounded: a client keeps at most maxKidGhosts ghosts of
// node-side children at once; a child past that gets none, and a ghost
// that ends (its child gone, or its job over) makes room again.
func TestKidGhostsBounded(t *testing.T) {
	var probe ghost.Spawner
	if err := probe.Check(); err != nil {
		t.Skip(err)
	}
	defer func(n int64) { maxKidGhosts = n }(maxKidGhosts)
	maxKidGhosts = 2
	ctl, master := net.Pipe()
	defer ctl.Close()
	go io.Copy(io.Discard, master) // the ghosts' pids, as the master would read them
	c := &Client{}
	cmd := &Cmd{Node: 1, PID: 100, c: c, ctl: ctl, gh: &cmdGhosts{kids: map[int]*ghost.Ghost{}, timer: time.NewTimer(time.Hour)}}
	kids := func(pids ...int) *wire.Update {
		u := &wire.Update{}
		for _, p := range pids {
			u.Procs = append(u.Procs, wire.ProcChange{PID: p, Argv: []string{"kid"}})
		}
		return u
	}
	check := func(when string, want ...int) {
		t.Helper()
		cmd.gh.mu.Lock()
		got := slices.Sorted(maps.Keys(cmd.gh.kids))
		cmd.gh.mu.Unlock()
		if !slices.Equal(got, want) || c.kidGhosts.Load() != int64(len(want)) {
			t.Errorf("%s: ghosts of %v (count %d), want %v", when, got, c.kidGhosts.Load(), want)
		}
	}
	cmd.update(kids(101, 102, 103))
	check("three children, room for two", 101, 102)
	cmd.update(&wire.Update{Procs: []wire.ProcChange{{PID: 101, Gone: true}}})
	cmd.update(kids(104))
	check("one gone, another new", 102, 104)
	cmd.endGhosts(wire.Result{}, false)
	check("the job over")
}
