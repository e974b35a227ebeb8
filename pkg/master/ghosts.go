package master

import (
	"fmt"
	"net"
	"syscall"

	"github.com/beo-cluster/beo/pkg/procstat"
	"github.com/beo-cluster/beo/pkg/wire"
)

// The master's records of remote processes and their ghosts.
//
// Every remote process has a ghost on the master (pkg/ghost), started
// by the client that started the job, as its own child, a few
// milliseconds into the job's life; node-side children get one too,
// once their node reports them (wire.Update, pkg/slave kids.go). The
// master keeps one record per remote process — the job's own and each
// child the node reported — with the pid of its ghost once the client
// has told it (wire.Signal{Ghost}), the client's pid until then:
// bpstat -p and -P read these records, and a kill by node and pid
// reaches children too. A ghost forwards what it is sent as a Signal
// naming its process (Signal.PID), which the master passes to the node
// on the job's exec stream.

// readResult reads the node's exec stream after Started until the
// Result, applying and passing on to the client every Update before it.
func (m *Master) readResult(nd, cl net.Conn, r *relay, res *wire.Result) error {
	for {
		var ev wire.Event
		if err := wire.Read(nd, &ev); err != nil {
			return err
		}
		if ev.Result != nil {
			*res = *ev.Result
			return nil
		}
		if ev.Update == nil {
			continue
		}
		m.applyUpdate(r, ev.Update)
		if len(ev.Update.Procs) > 0 { // the usage is the master's (acct.go), the processes the client's too
			// A client that left misses it: it is hung up anyway.
			wire.Write(cl, wire.Event{Update: &wire.Update{Procs: ev.Update.Procs}})
		}
	}
}

// applyUpdate changes r's records as the node reported: its processes,
// and the job's usage (acct.go).
func (m *Master) applyUpdate(r *relay, u *wire.Update) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u.Usage != nil {
		r.prev, r.usage = r.usage, u.Usage
	}
	for _, p := range u.Procs {
		switch {
		case p.PID == r.proc.PID: // exec'd, or ended before its children (the record stays until the Result)
			if len(p.Argv) > 0 {
				r.proc.Argv = p.Argv
			}
		case p.Gone:
			delete(r.kids, p.PID)
		case r.kids[p.PID] != nil:
			r.kids[p.PID].Argv = p.Argv
		default:
			if r.kids == nil {
				r.kids = map[int]*wire.Proc{}
			}
			r.kids[p.PID] = &wire.Proc{Node: r.proc.Node, PID: p.PID, Ghost: r.proc.Client, Client: r.proc.Client,
				Parent: r.proc.PID, UID: r.proc.UID, Argv: p.Argv, Started: m.clock()}
		}
	}
}

// fromClient acts on one frame a client sent on a job's exec stream: a
// signal for the job's process group, one for one of its processes
// (from a ghost), or the pid of a ghost.
func (m *Master) fromClient(r *relay, sg wire.Signal) {
	if sg.Sig == 0 && sg.Ghost != 0 {
		m.mu.Lock()
		switch {
		case !m.ghostOK(r, sg.Ghost):
			m.log.Warn("a client named a ghost that is not its own", "client_pid", r.proc.Client, "uid", r.owner, "ghost", sg.Ghost)
		case sg.PID == 0 || sg.PID == r.proc.PID:
			r.proc.Ghost = sg.Ghost
		default:
			if k := r.kids[sg.PID]; k != nil {
				k.Ghost = sg.Ghost
			}
		}
		m.mu.Unlock()
		return
	}
	if sg.PID != 0 {
		r.signalPID(sg.Sig, sg.PID)
		return
	}
	r.signal(sg.Sig)
}

// ghostOK reports whether pid ghost may stand for a process of r in the
// master's records, which kill and bpmove by ghost search: for a client
// on the master, only a child of that client (the ghosts it started) —
// any other pid it named could be another user's ghost, which a kill by
// ghost would then also reach, or be refused for; for a client on a node,
// whose ghosts the master cannot see, a pid no other user's process has
// as its ghost. m.mu is held.
func (m *Master) ghostOK(r *relay, ghost int) bool {
	if r.proc.Client > 0 {
		st, err := procstat.Read(ghost)
		return err == nil && st.PPID == r.proc.Client
	}
	for _, o := range m.procs {
		if o.owner == r.owner {
			continue
		}
		if o.proc.Ghost == ghost {
			return false
		}
		for _, k := range o.kids {
			if k.Ghost == ghost {
				return false
			}
		}
	}
	return true
}

// signalPID sends sig to one process of the job on its node.
func (r *relay) signalPID(sig, pid int) error { return r.send(wire.Signal{Sig: sig, PID: pid}) }

// procsLocked lists every record; m.mu is held.
func (m *Master) procsLocked() []wire.Proc {
	out := make([]wire.Proc, 0, len(m.procs))
	for _, r := range m.procs {
		out = append(out, r.proc)
		for _, k := range r.kids {
			out = append(out, *k)
		}
	}
	return out
}

// target is one process a kill reaches.
type target struct {
	r    *relay
	proc wire.Proc
	kid  bool
}

// targets finds what a Kill names: a process by node and pid, or every
// process whose ghost (or whose client) has that pid.
func (m *Master) targets(k wire.Kill) []target {
	m.mu.Lock()
	defer m.mu.Unlock()
	var hit []target
	match := func(p wire.Proc) bool {
		if k.Ghost != 0 {
			return p.Ghost == k.Ghost || p.Client == k.Ghost
		}
		return p.Node == k.Node && p.PID == k.PID
	}
	for _, r := range m.procs {
		if match(r.proc) {
			hit = append(hit, target{r: r, proc: r.proc})
		}
		for _, c := range r.kids {
			// A child by node and pid, or by its own ghost; a client's
			// pid names its jobs' processes, whose process groups hold
			// the children that stayed there.
			if (k.Ghost == 0 && match(*c)) || (k.Ghost != 0 && c.Ghost == k.Ghost && c.Ghost != c.Client) {
				hit = append(hit, target{r: r, proc: *c, kid: true})
			}
		}
	}
	return hit
}

// send delivers a Kill's signal to t: a child, or a process reached
// through its ghost, alone; the job's process by node and pid, or
// through its client, with its process group (as bpsh forwards).
func (t target) send(k wire.Kill) error {
	var err error
	if t.kid || (k.Ghost != 0 && k.Ghost == t.proc.Ghost && k.Ghost != t.proc.Client) {
		err = t.r.signalPID(k.Sig, t.proc.PID)
	} else {
		err = t.r.signal(k.Sig)
	}
	if err != nil {
		return fmt.Errorf("node %d: pid %d: %w", t.proc.Node, t.proc.PID, err)
	}
	return nil
}

// resumed reports whether a client frame resumes stopped processes
// (followStops, ghost.go).
func resumed(sg wire.Signal) bool { return sg.Sig == int(syscall.SIGCONT) }
