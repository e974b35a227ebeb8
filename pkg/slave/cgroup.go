package slave

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/cgroup"
	"golang.org/x/sys/unix"
)

// One job, one cgroup.
//
// Every process the slave starts for the master begins life in a cgroup
// (v2) of its own, a child of the slave's jobs group (Config.Cgroup; see
// pkg/cgroup for who makes it on a real and on a simulated node). The
// job's process is cloned straight into it (clone3 CLONE_INTO_CGROUP,
// SysProcAttr.UseCgroupFD; the exec trampoline too), so every process
// the job forks is in it from its first instruction, whatever it does
// with sessions and process groups, and none of it can leave: the group
// belongs to the slave's identity, not the job's. That gives the slave:
//
//   - the job's whole process tree on the node (cgroup.procs): the
//     children that get ghosts on the master;
//   - a kill that nothing escapes (cgroup.kill): when the job ends, what
//     the job's process left behind is killed and the group removed —
//     nothing of a job outlives it on a node; the hangup's SIGKILL after
//     its grace, and every job at once when the slave loses its master
//     (orphans.go);
//   - accounting (usage.go): cpu.stat always; memory, pids and io where
//     the jobs group passes those controllers down.
//
// The job ends when its process has exited and its stdout and stderr
// are drained (a child still writing into them keeps the job alive, and
// its output arrives, as before); whatever else is left then is killed.
//
// Without cgroups — none mounted, none this slave may write (a non-root
// slave without delegation), Config.Cgroup "none" — jobs run as before
// in their own process group, and the slave says so once in its log.
// Its kills then reach the job's process group only.

// jobsNone turns the jobs' cgroups off (Config.Cgroup).
const jobsNone = "none"

// jobsAuto is the prefix of the group a slave started without
// Config.Cgroup makes under its own cgroup: beo-jobs-PID-RANDOM, so that
// two such slaves — in two processes, or two Runs in one (tests) —
// never touch each other's jobs.
const jobsAuto = "beo-jobs-"

// jobControllers are enabled for the jobs where the hierarchy allows.
var jobControllers = []string{"cpu", "memory", "pids", "io"}

// jobGroups is the slave's jobs group; base "" means no cgroups.
type jobGroups struct {
	base cgroup.Group
	rd   cgroup.Reader // the jobs' accounting (usage.go)
	auto bool          // base is ours: removed when the slave stops
	seq  atomic.Uint64
	log  *slog.Logger
	warn sync.Once
}

// openJobs finds or makes the jobs group spec names ("" = a new
// beo-jobs-PID-RANDOM under the slave's own cgroup, "none" = no
// cgroups), kills and removes what an earlier slave left in it (or, for
// "", the beo-jobs groups of processes no longer running), and enables
// the controllers it can.
func openJobs(spec string, log *slog.Logger) *jobGroups {
	j := &jobGroups{log: log}
	if spec == jobsNone {
		log.Info("jobs run without cgroups (-cgroup none)")
		return j
	}
	base, err := j.jobsBase(spec)
	if err == nil {
		err = j.sweep(base)
	}
	if err != nil {
		log.Warn("jobs run without cgroups: their node-side children get no ghosts, and only their process group is killed", "err", err)
		return j
	}
	// The parent passes the controllers down if it may: the root (a real
	// node's /sys/fs/cgroup), or a group that holds no process.
	base.Parent().Enable(jobControllers...)
	on, err := base.Enable(jobControllers...)
	log.Info("jobs run in cgroups", "group", base, "controllers", on, "refused", err)
	j.base = base
	r, err := readRoom()
	if err != nil {
		log.Warn("jobs run without limits: the node keeps no room for its own services", "err", err)
		return j
	}
	mem, pids := r.forJobs()
	merr := base.SetMax("memory.max", mem)
	perr := base.SetMax("pids.max", pids)
	log.Info("jobs' limits: the node keeps room for its own services", "memory_max", mem, "pids_max", pids,
		"refused", errors.Join(merr, perr))
	return j
}

// Room the node keeps for itself.
//
// The jobs group's memory.max and pids.max leave the node's own
// processes — init, bpslave, the other services, the module helper —
// room to run whatever the jobs do: a job that takes all the memory
// meets the kernel's OOM killer inside the jobs group (which kills a
// process of a job, and the job is told so: usage.go, OOMKills), not
// the node-wide one, which takes the largest process — bpslave, when a
// job is many small ones — and a fork bomb finds its fork failing, not
// the node's. Measured before on a QEMU node of 256 MiB:
// `bpsh 0 sh -c 'f(){ f | f & }; f'` took the node down (the kernel's
// OOM killer killed bpslave; the node was still down 25 s later).
//
// What the jobs get: the memory available when the slave starts
// (MemAvailable: what the kernel, the node's files in its RAM root and
// the services already use is not there), less an eighth of the node's
// memory — at least 64 MiB, at most 1 GiB — for the services and for
// what the kernel takes under a job's load without charging it to the
// job; and all but 512 of the processes and threads the kernel allows
// (the lower of pid_max and threads-max). A sixteenth, at least 32 MiB,
// was not enough: a non-root user's fork bomb on a 256 MiB QEMU node
// still ran the node out of memory in 1 of 4 runs, its group at its
// limit (122 MiB), and the node-wide OOM killer took bpslave.
const (
	memKeepMin = 64 << 20
	memKeepMax = 1 << 30
	pidsKeep   = 512
	jobsMin    = 64 // processes; and MiB of memory
)

// room is what the node has.
type room struct {
	total, avail int64 // MemTotal, MemAvailable: bytes
	pids         int64 // min(pid_max, threads-max)
}

// forJobs returns the jobs group's memory.max and pids.max.
func (r room) forJobs() (mem, pids int64) {
	keep := min(max(r.total/8, memKeepMin), memKeepMax)
	return max(r.avail-keep, jobsMin<<20), max(r.pids-pidsKeep, jobsMin)
}

// readRoom reads the node's memory and process limits.
func readRoom() (room, error) {
	var r room
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return r, err
	}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(line, ":")
		if k != "MemTotal" && k != "MemAvailable" {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return r, fmt.Errorf("/proc/meminfo: %q: %w", line, err)
		}
		if k == "MemTotal" {
			r.total = kb << 10
		} else {
			r.avail = kb << 10
		}
	}
	if r.total == 0 || r.avail == 0 {
		return r, errors.New("/proc/meminfo: no MemTotal or MemAvailable")
	}
	for _, f := range []string{"/proc/sys/kernel/pid_max", "/proc/sys/kernel/threads-max"} {
		b, err := os.ReadFile(f)
		if err != nil {
			return r, err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return r, fmt.Errorf("%s: %w", f, err)
		}
		if r.pids == 0 || n < r.pids {
			r.pids = n
		}
	}
	return r, nil
}

// jobsBase makes the jobs group spec names.
func (j *jobGroups) jobsBase(spec string) (cgroup.Group, error) {
	if spec != "" {
		g := cgroup.Group(spec)
		if err := os.MkdirAll(spec, 0o755); err != nil {
			return "", err
		}
		if !g.Exists() {
			return "", fmt.Errorf("%s is not a cgroup v2 group", spec)
		}
		return g, nil
	}
	self, err := cgroup.Self()
	if err != nil {
		return "", err
	}
	if kids, err := self.Children(); err == nil {
		for _, k := range kids {
			rest, ok := strings.CutPrefix(filepath.Base(string(k)), jobsAuto)
			pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
			if ok && err == nil && pid != os.Getpid() && errors.Is(unix.Kill(pid, 0), unix.ESRCH) {
				k.Remove(time.Second)
			}
		}
	}
	j.auto = true
	return self.MakeNew(fmt.Sprintf("%s%d-%08x", jobsAuto, os.Getpid(), rand.Uint32()))
}

// close removes the jobs group if this slave made it for itself; each
// job's group is gone by then (the session's end killed them).
func (j *jobGroups) close() {
	if j.on() && j.auto {
		if err := j.base.Remove(5 * time.Second); err != nil {
			j.log.Warn("jobs group not removed", "group", j.base, "err", err)
		}
	}
}

// sweep kills and removes every job group an earlier slave left in base
// (it crashed, or nobody killed its jobs).
func (j *jobGroups) sweep(base cgroup.Group) error {
	kids, err := base.Children()
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := k.Remove(2 * time.Second); err != nil {
			j.log.Warn("jobs group: cannot remove what an earlier bpslave left", "group", k, "err", err)
		} else {
			j.log.Info("jobs group: killed and removed what an earlier bpslave left", "group", k)
		}
	}
	return nil
}

// on reports whether jobs get cgroups.
func (j *jobGroups) on() bool { return j != nil && j.base != "" }

// killAll kills every job in the jobs group at once.
func (j *jobGroups) killAll() error {
	if !j.on() {
		return nil
	}
	return j.base.Kill()
}

// jobGroup is one job's cgroup.
type jobGroup struct {
	g  cgroup.Group
	rd *cgroup.Reader // the slave's, for every job (usage.go)
	fd *os.File       // open until the job's process is started
}

// make creates a job's group, named name (the master's exec id: unique
// in the cluster, so a process that moves here finds the group it had,
// by path, move.go), or name.N if that is taken; open for
// SysProcAttr.CgroupFD. nil when jobs get no cgroups; a failure is
// logged (once) and the job runs without.
func (j *jobGroups) make(name string) *jobGroup {
	if !j.on() {
		return nil
	}
	try := name
	for {
		g, err := j.base.MakeNew(try)
		if errors.Is(err, fs.ErrExist) {
			// left by an earlier slave, not swept: skip it
			try = name + "." + strconv.FormatUint(j.seq.Add(1), 10)
			continue
		}
		if err == nil {
			var fd *os.File
			if fd, err = g.Open(); err == nil {
				return &jobGroup{g: g, rd: &j.rd, fd: fd}
			}
			g.Remove(0)
		}
		j.warn.Do(func() { j.log.Warn("a job runs without its cgroup", "base", j.base, "err", err) })
		return nil
	}
}

// use makes the process sys starts enter the group at birth.
func (jg *jobGroup) use(sys *syscall.SysProcAttr) {
	if jg == nil {
		return
	}
	sys.UseCgroupFD, sys.CgroupFD = true, int(jg.fd.Fd())
}

// started closes the group's descriptor: the process is in.
func (jg *jobGroup) started() {
	if jg != nil && jg.fd != nil {
		jg.fd.Close()
		jg.fd = nil
	}
}

// drain kills what the job left, if anything, and waits (up to a
// second) for it to be gone, so that nothing of the job runs once its
// Result is out and the group's accounting is final (usage.go); remove
// follows. A job that left nothing costs one read of cgroup.events here.
func (jg *jobGroup) drain() {
	if jg == nil {
		return
	}
	if pop, err := jg.g.Populated(); err == nil && pop {
		if err := jg.g.Kill(); err == nil {
			jg.g.WaitEmpty(time.Second)
		}
	}
}

// remove kills what is left in the group and removes it, in the
// background: no caller waits for a process to die.
func (jg *jobGroup) remove(log *slog.Logger) {
	if jg == nil {
		return
	}
	jg.started()
	go func() {
		if err := jg.g.Remove(10 * time.Second); err != nil {
			log.Warn("job group not removed", "group", jg.g, "err", err)
		}
	}()
}

// kill kills every process of the job: its group, or without one its
// process group.
func (r *running) killAll() error {
	if r.cg != nil {
		return r.cg.g.Kill()
	}
	return unix.Kill(-r.pid, unix.SIGKILL)
}
