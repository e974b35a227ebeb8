package bproc

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/ghost"
	"github.com/beo-cluster/beo/pkg/wire"
)

// Ghosts.
//
// Every remote process a Cmd starts — and every child it forks on its
// node, as the node reports them (wire.Update) — gets a ghost in this
// process (pkg/ghost): a tiny child process that ps, pgrep, pstree, top
// and kill see with the remote command line followed by "[node N]".
// Whatever signal the ghost is sent, SIGKILL and SIGSTOP included,
// reaches its remote process alone; when the remote process ends its
// ghost ends the same way (exit code or signal), and the children still
// running when the job ends die with it, ghosts included. The master is
// told each ghost's pid (bpstat -p, -P). A client keeps at most
// maxKidGhosts (4096) children's ghosts at once.
//
// The ghost of the job's own process starts ghostDelay after Started,
// plus ghostPerCmd for each command the client is running, only if the
// process still runs: `bpsh 0 true` starts no ghost, and neither does
// a `bpsh -a true` on a thousand nodes whose processes all end within
// about a second (a ghost costs its client ~0.5 ms to start). Where no
// ghost can start (not x86-64, no memfd), the client runs without, as
// it did before: its own pid stands for its remote processes.
const (
	ghostDelay  = 50 * time.Millisecond
	ghostPerCmd = time.Millisecond
)

// maxKidGhosts bounds the ghosts of node-side children one client keeps
// at once, over all its commands: a job that forks thousands of
// processes on a node (a fork bomb its node's limits contain; a `bpsh
// -a` of one on every node) must not fill the master's process table
// with as many ghosts. Past it a new child gets none: ps on the master
// does not show it, and it still dies with its job. A variable for the
// tests.
var maxKidGhosts int64 = 4096

// ghostWait bounds how long Wait waits for the ghosts to be reaped
// once told to end: they end in microseconds.
const ghostWait = time.Second

// NoGhosts makes the client start no ghosts (call before Start).
func (c *Client) NoGhosts() { c.noGhosts.Store(true) }

// cmdGhosts are one Cmd's ghosts.
type cmdGhosts struct {
	mu       sync.Mutex
	timer    *time.Timer
	main     *ghost.Ghost
	mainArgv []string // the remote process's argv, as it last exec'd
	kids     map[int]*ghost.Ghost
	// groups maps a remote process group to the ghosts' group that
	// stands for it here (the pid of the first ghost in it).
	groups   map[int]int
	mainDone bool // the job's process ended before the job (update)
	ended    bool
}

// startGhosts arranges the ghost of the process Start started.
func (cmd *Cmd) startGhosts() {
	if cmd.c.noGhosts.Load() {
		return
	}
	gh := &cmdGhosts{mainArgv: cmd.Args, kids: map[int]*ghost.Ghost{}, groups: map[int]int{}}
	cmd.gh = gh
	running := cmd.c.running.Add(1)
	gh.mu.Lock()
	gh.timer = time.AfterFunc(ghostDelay+time.Duration(running)*ghostPerCmd, func() {
		gh.mu.Lock()
		defer gh.mu.Unlock()
		if gh.main == nil && !gh.mainDone {
			// The job's process leads its own group on its node.
			gh.main = cmd.ghostLocked(cmd.PID, cmd.PID, gh.mainArgv)
		}
	})
	gh.mu.Unlock()
}

// ghostLocked starts the ghost of remote pid, in the ghosts' group of
// its remote process group pgid (0: unknown, a group of its own), so
// that kill -- -PGID of a ghost's group reaches every ghost of the group
// and so every remote process in it; cmd.gh.mu is held.
func (cmd *Cmd) ghostLocked(pid, pgid int, argv []string) *ghost.Ghost {
	if cmd.gh.ended || cmd.c.noGhosts.Load() {
		return nil
	}
	conf := ghost.Config{
		Argv:    cmd.ghostArgv(argv),
		Env:     []string{"BPROC_NODE=" + strconv.Itoa(cmd.Node), "BPROC_PID=" + strconv.Itoa(pid)},
		Forward: func(sig syscall.Signal) { cmd.write(wire.Signal{Sig: int(sig), PID: pid}) },
		Pgid:    cmd.gh.groups[pgid],
	}
	g, err := cmd.c.spawner.Start(conf)
	if err != nil && conf.Pgid != 0 { // that group's ghosts have all ended: a new one
		conf.Pgid = 0
		g, err = cmd.c.spawner.Start(conf)
	}
	if err != nil {
		cmd.c.noGhosts.Store(true) // no ghost will start: run without, as before
		return nil
	}
	if pgid != 0 && conf.Pgid == 0 {
		cmd.gh.groups[pgid] = g.Pid
	}
	cmd.write(wire.Signal{Ghost: g.Pid, PID: pid})
	return g
}

// ghostArgv is what ps shows for a ghost: the remote command and its node.
func (cmd *Cmd) ghostArgv(argv []string) []string {
	return append(append([]string{}, argv...), fmt.Sprintf("[node %d]", cmd.Node))
}

// write sends one frame on the exec stream.
func (cmd *Cmd) write(v any) error {
	cmd.wmu.Lock()
	defer cmd.wmu.Unlock()
	return wire.Write(cmd.ctl, v)
}

// update applies what the node reported of the job's processes.
func (cmd *Cmd) update(u *wire.Update) {
	if u.Fork != nil {
		cmd.adopt(u.Fork) // fork.go
	}
	gh := cmd.gh
	if gh == nil {
		return
	}
	gh.mu.Lock()
	defer gh.mu.Unlock()
	if u.Moved != nil { // moved to another node (move.go): the same ghost, relabelled
		cmd.Node = *u.Moved
		for _, p := range u.Procs {
			cmd.PID = p.PID
		}
		if gh.main != nil {
			gh.main.Exec(cmd.ghostArgv(gh.mainArgv))
		}
		return
	}
	for _, p := range u.Procs {
		switch {
		case p.PID == cmd.PID && p.Gone: // it ended; its children hold the job
			gh.mainDone = true
			if g := gh.main; g != nil {
				endAs(g, wire.Result{Status: p.Status, Signal: p.Signal}, false)
			}
		case p.PID == cmd.PID:
			if len(p.Argv) > 0 {
				gh.mainArgv = p.Argv
				if gh.main != nil {
					gh.main.Exec(cmd.ghostArgv(p.Argv))
				}
			}
		case p.Gone:
			if g := gh.kids[p.PID]; g != nil {
				// As it ended, if its node knew (its parent there
				// has its status too); else 0.
				endAs(g, wire.Result{Status: p.Status, Signal: p.Signal}, false)
				delete(gh.kids, p.PID)
				cmd.c.kidGhosts.Add(-1)
			}
		case gh.kids[p.PID] != nil:
			gh.kids[p.PID].Exec(cmd.ghostArgv(p.Argv))
		case cmd.c.kidGhosts.Load() >= maxKidGhosts: // no ghost for it
		default:
			if g := cmd.ghostLocked(p.PID, p.PGID, p.Argv); g != nil {
				gh.kids[p.PID] = g
				cmd.c.kidGhosts.Add(1)
			}
		}
	}
}

// endGhosts ends the ghosts once the job is over: the job's own as its
// process ended (lost: killed), the children's killed with the job. It
// waits, briefly, for them to be reaped here, by their parent.
func (cmd *Cmd) endGhosts(r wire.Result, lost bool) {
	gh := cmd.gh
	if gh == nil {
		return
	}
	gh.mu.Lock()
	gh.ended = true
	gh.timer.Stop()
	cmd.c.running.Add(-1)
	var all []*ghost.Ghost
	if g := gh.main; g != nil {
		if !gh.mainDone {
			endAs(g, r, lost)
		}
		all = append(all, g)
	}
	for _, g := range gh.kids {
		g.Die(syscall.SIGKILL)
		all = append(all, g)
	}
	cmd.c.kidGhosts.Add(-int64(len(gh.kids)))
	clear(gh.kids)
	gh.mu.Unlock()
	deadline := time.After(ghostWait)
	for _, g := range all {
		select {
		case <-g.Done():
		case <-deadline:
			return
		}
	}
}

// holdGhosts keeps the ghosts in step with a SIGSTOP or SIGCONT sent to
// the whole job (Signal: its client's job control): stopped or resumed
// with it, forwarding nothing.
func (cmd *Cmd) holdGhosts(sig syscall.Signal) {
	gh := cmd.gh
	if gh == nil || (sig != syscall.SIGSTOP && sig != syscall.SIGCONT) {
		return
	}
	gh.mu.Lock()
	defer gh.mu.Unlock()
	for _, g := range append(slices.Collect(maps.Values(gh.kids)), gh.main) {
		switch {
		case g == nil:
		case sig == syscall.SIGSTOP:
			g.Hold()
		default:
			g.Release()
		}
	}
}

// endAs ends g as its remote process ended.
func endAs(g *ghost.Ghost, r wire.Result, lost bool) {
	switch {
	case lost || r.Err != "":
		g.Die(syscall.SIGKILL)
	case r.Signal != 0:
		g.Die(syscall.Signal(r.Signal))
	default:
		g.Exit(r.Status)
	}
}

// readResult reads the exec stream up to the Result, applying the
// node's Updates on the way.
func (cmd *Cmd) readResult(r *wire.Result) error {
	for {
		var ev wire.Event
		if err := wire.Read(cmd.ctl, &ev); err != nil {
			return err
		}
		if ev.Result != nil {
			*r = *ev.Result
			return nil
		}
		if ev.Update != nil {
			cmd.update(ev.Update)
		}
	}
}
