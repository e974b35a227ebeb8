package slave

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/procstat"
	"github.com/beo-cluster/beo/pkg/wire"
	"golang.org/x/sys/unix"
)

// The job's processes, for their ghosts (and its usage, usage.go).
//
// Every process of a job on the node has a ghost on the master
// (pkg/ghost), the children the job forks too. The slave finds them in
// the job's cgroup (cgroup.go): while the job runs it reads cgroup.procs
// and each process's command line — first kidFirst after the start, so
// that a job of a few milliseconds costs nothing, then at intervals
// doubling to kidMax — and sends the master an Update frame on the exec
// stream for what changed: a process that appeared (reported once it
// was seen twice in a row with the same command line, so that the
// `sleep 0.05` of a shell loop gets no ghost of a few milliseconds), one
// that exec'd, one that is gone (with its exit status, from the kernel's
// process connector: exits.go). The job's own process is reported only
// when it exec's (`sh -c 'exec prog'`), and Gone when it exits while
// processes it left keep the job going (they hold its output), so that
// its ghost ends then; a job whose process was its last has nothing
// reported of that exit: the Result follows. A ghost therefore appears within
// about a second of its process and goes within about half a second of
// it; what is left when the job ends dies with the job, and its ghosts
// with the Result.
//
// A signal from a ghost names one process (wire.Signal.PID): the slave
// delivers it only to a process of that job's cgroup, through a pidfd
// opened before the check, so a recycled pid is never signalled.
const (
	kidFirst = 50 * time.Millisecond
	kidMax   = 500 * time.Millisecond
)

// kids is what the watcher knows of the job's processes.
type kids struct {
	told    map[int]string // reported: pid → command line (NUL-separated)
	pending map[int]string // seen once, not yet reported
}

// kidWatch is the watcher of one job.
type kidWatch struct {
	done, finished chan struct{}
	exit           chan wire.ProcChange
}

// watchKids reports the job's processes on st (Update frames) until
// stop is called. Without a cgroup there is nothing to watch.
func (r *running) watchKids(st net.Conn, log *slog.Logger) *kidWatch {
	if r.cg == nil {
		return nil
	}
	w := &kidWatch{done: make(chan struct{}), finished: make(chan struct{}), exit: make(chan wire.ProcChange, 1)}
	go func() {
		defer close(w.finished)
		k := kids{told: map[int]string{r.pid: argvLine(r.argv)}, pending: map[int]string{}}
		wait := kidFirst
		t := time.NewTimer(wait)
		defer t.Stop()
		looked := false
		nextUsage := min(usageFirst, r.every) // the job's age at its next usage reading (usage.go)
		for {
			var ch []wire.ProcChange
			var use *wire.Usage
			select {
			case <-w.done:
				// A last look: a child that ended since the one before
				// (`sh -c 'child & wait'` ends right after it) is reported
				// gone with its status; its ghost would otherwise be killed
				// with the job's Result.
				if looked && !r.wasMoved() {
					if ch := r.lastLook(&k); len(ch) > 0 {
						wire.Write(st, wire.Event{Update: &wire.Update{Procs: ch}})
					}
				}
				return
			case e := <-w.exit:
				if !looked || !r.goesOn() {
					// A job of a few milliseconds, or nothing of it
					// left: the Result follows and says it all.
					continue
				}
				ch = []wire.ProcChange{e}
			case <-t.C:
				looked = true
				ch = r.changes(&k)
				if age := time.Since(r.meter.start); age >= nextUsage {
					if u, err := r.meter.read(r.cg, ""); err == nil {
						use = &u
					}
					nextUsage = age + r.every
				}
				wait = min(2*wait, kidMax)
				// The next look comes at the next usage reading at the
				// latest: the readings keep their interval while the
				// looks space out.
				t.Reset(max(min(wait, nextUsage-time.Since(r.meter.start)), time.Millisecond))
			}
			if (len(ch) > 0 || use != nil) && !r.wasMoved() { // a moved job's processes live on elsewhere (move.go)
				if err := wire.Write(st, wire.Event{Update: &wire.Update{Procs: ch, Usage: use}}); err != nil {
					log.Debug("update not sent", "err", err)
					return
				}
			}
		}
	}()
	return w
}

// exited tells the watcher the job's process ended: its ghost ends now,
// even if children keep the job going.
func (w *kidWatch) exited(pid int, ws syscall.WaitStatus, err error) {
	if w == nil || err != nil {
		return
	}
	w.exit <- ended(pid, ws)
}

// ended is the report of pid's end with ws.
func ended(pid int, ws syscall.WaitStatus) wire.ProcChange {
	e := wire.ProcChange{PID: pid, Gone: true, Status: ws.ExitStatus()}
	if ws.Signaled() {
		e.Status, e.Signal = 0, int(ws.Signal())
	}
	return e
}

// gone is the report of a child gone from the job: how it ended if the
// kernel said so by until (exits.go), else only that it is gone.
func gone(pid int, exits *exitLog, until time.Time) wire.ProcChange {
	if ws, ok := exits.status(pid, until); ok {
		return ended(pid, ws)
	}
	return wire.ProcChange{PID: pid, Gone: true}
}

// goesOn reports whether processes of the job are left after its own
// process exited: its children keep the job going, and only then is the
// job's process reported Gone before the Result (wire.ProcChange).
func (r *running) goesOn() bool {
	pop, err := r.cg.g.Populated()
	return err != nil || pop // unknown: report it, as before
}

// stop ends the watcher; it returns once the watcher no longer writes.
func (w *kidWatch) stop() {
	if w == nil {
		return
	}
	close(w.done)
	<-w.finished
}

// changes reads the job's processes and returns what changed since the
// last report.
func (r *running) changes(k *kids) []wire.ProcChange {
	pids, err := r.cg.g.Procs()
	if err != nil {
		return nil
	}
	var out []wire.ProcChange
	seen := make(map[int]bool, len(pids))
	for _, pid := range pids {
		seen[pid] = true
		line := cmdline(pid)
		if line == "" { // exiting, or a kernel detail: look again next time
			continue
		}
		if old, ok := k.told[pid]; ok {
			if old != line {
				k.told[pid] = line
				out = append(out, wire.ProcChange{PID: pid, Argv: splitLine(line)})
			}
			continue
		}
		if k.pending[pid] == line { // seen twice: it stays a while
			delete(k.pending, pid)
			k.told[pid] = line
			out = append(out, wire.ProcChange{PID: pid, Argv: splitLine(line), PGID: pgidOf(pid)})
			continue
		}
		if _, ok := k.pending[pid]; !ok {
			r.exits.forget(pid) // an exit known for the pid was another process's
		}
		k.pending[pid] = line
	}
	for pid := range k.pending {
		if !seen[pid] {
			delete(k.pending, pid)
		}
	}
	out = append(out, r.goneFrom(k, seen)...)
	slices.SortFunc(out, func(a, b wire.ProcChange) int { return a.PID - b.PID })
	return out
}

// lastLook is the last look at a job that is ending: the reported processes
// gone from its cgroup since the look before. What is still there dies
// with the job, and its ghosts with the Result.
func (r *running) lastLook(k *kids) []wire.ProcChange {
	pids, err := r.cg.g.Procs()
	if err != nil {
		return nil
	}
	seen := make(map[int]bool, len(pids))
	for _, pid := range pids {
		seen[pid] = true
	}
	return r.goneFrom(k, seen)
}

// goneFrom forgets, and returns as gone (with their statuses, exits.go),
// the reported processes not in seen.
func (r *running) goneFrom(k *kids, seen map[int]bool) []wire.ProcChange {
	var out []wire.ProcChange
	until := time.Now().Add(exitWait)
	for pid := range k.told {
		if !seen[pid] && pid != r.pid { // the job's process ends with the Result
			delete(k.told, pid)
			out = append(out, gone(pid, r.exits, until))
		}
	}
	return out
}

// cmdline is /proc/PID/cmdline, "" if unreadable or empty.
// pgidOf is pid's process group, 0 if it cannot be read.
func pgidOf(pid int) int {
	st, err := procstat.Read(pid)
	if err != nil {
		return 0
	}
	return st.PGID
}

func cmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return string(b)
}

// argvLine is argv as /proc/PID/cmdline shows it.
func argvLine(argv []string) string {
	var b bytes.Buffer
	for _, a := range argv {
		b.WriteString(a)
		b.WriteByte(0)
	}
	return b.String()
}

// splitLine turns a command line back into argv.
func splitLine(line string) []string {
	return strings.Split(strings.TrimSuffix(line, "\x00"), "\x00")
}

// signalOne sends sig to one process of the job: its own, or one in
// its cgroup.
func (r *running) signalOne(pid int, sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return nil
	}
	if pid == r.pid {
		return unix.Kill(pid, sig)
	}
	if r.cg == nil {
		return errors.New("not a process of this job")
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	pids, err := r.cg.g.Procs()
	if err != nil {
		return err
	}
	if !slices.Contains(pids, pid) {
		return errors.New("not a process of this job")
	}
	return unix.PidfdSendSignal(fd, sig, nil, 0)
}
