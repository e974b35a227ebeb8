package slave

import (
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// Job accounting.
//
// What a job uses is what its cgroup (cgroup.go) accounts: CPU time,
// memory, tasks and block I/O of every process it ever had on the node,
// the ones that ended too. The job's watcher (kids.go), which reads the
// group's processes anyway, reads its accounting about a second after
// the start (usageFirst, or one interval if shorter) and then every
// Config.UsageInterval, and sends
// it to the master on the job's exec stream (wire.Update.Usage). When
// the job is over — its process reaped, its output drained, whatever it
// left killed — the group is read once more, before it is removed: that
// final Usage goes in the Result, so the master's accounting of a
// finished job is exact, not the last reading before it ended.
//
// Where the memory controller is off (a host whose cgroup v2 hierarchy
// has no controllers, a slave in a populated group) the memory is the
// sum of the processes' resident sets (/proc, cgroup.Resident), its peak
// the highest the meter saw, a process's VmHWM, or the job's process's
// rusage; Usage.MemRSS says so. Where the pids controller is off the
// tasks are the group's own (cgroup.threads).
//
// The last reading is on the way to the Result: it costs one read of
// cpu.stat (the kernel flushes the group's per-CPU counters for it) and
// of the few other files the jobs group has — a cgroup.Reader shared by
// the slave's jobs remembers which are absent — 50–140 µs on this
// loaded 2-core machine (load average 17), against the 11 ms of
// `bpsh 0 true` (bench/process).
//
// A job without a cgroup sends no readings; its Result's Usage comes
// from the rusage of its process alone (wait4: its own CPU time and that
// of the children it waited for, its peak resident set), Tree false.
//
// The accounting goes over the session rather than in sendstats'
// datagrams: see pkg/acct for why.

// usageFirst is how long a job runs before its first reading (or one
// usage interval, if shorter): one of a few hundred milliseconds sends
// none (its Result says it all).
const usageFirst = time.Second

// DefaultUsageInterval is how often a running job's usage is sent to
// the master after the first: the stats interval of a node
// (stats.DefaultInterval).
const DefaultUsageInterval = 5 * time.Second

// meter is what the slave keeps of a job's accounting between readings:
// the peaks the cgroup files may not keep.
type meter struct {
	start     time.Time
	memPeak   int64
	tasksPeak int64
}

// read reads the job group's accounting now (proc: the proc file
// system, "" = /proc).
func (m *meter) read(jg *jobGroup, proc string) (wire.Usage, error) {
	g := jg.g
	cu, err := jg.rd.Usage(g)
	if err != nil {
		return wire.Usage{}, err
	}
	u := wire.Usage{At: time.Since(m.start), CPU: cu.CPU, User: cu.User, System: cu.System,
		Mem: cu.Memory, MemPeak: cu.MemoryPeak, OOMKills: cu.OOMKills,
		Tasks: cu.Tasks, TasksPeak: cu.TasksPeak, ReadBytes: cu.ReadBytes, WriteBytes: cu.WriteBytes, Tree: true}
	if u.Mem < 0 {
		if rss, hwm, err := g.Resident(proc); err == nil {
			u.Mem, u.MemRSS = rss, true
			m.memPeak = max(m.memPeak, hwm)
		}
	}
	if u.Mem >= 0 {
		m.memPeak = max(m.memPeak, u.Mem, u.MemPeak)
		u.MemPeak = m.memPeak
	}
	if u.Tasks >= 0 {
		m.tasksPeak = max(m.tasksPeak, u.Tasks, u.TasksPeak)
		u.TasksPeak = m.tasksPeak
	}
	return u, nil
}

// final is the Result's Usage: the group's last reading, once nothing
// of the job runs, with the job's process's rusage (ru, nil if it was
// not reaped) for the peak resident set; without a group, ru alone.
// nil if neither is there.
func (m *meter) final(jg *jobGroup, ru *syscall.Rusage) *wire.Usage {
	var maxrss int64
	if ru != nil {
		maxrss = ru.Maxrss * 1024 // kilobytes on Linux
	}
	if jg != nil {
		if u, err := m.read(jg, ""); err == nil {
			if ru != nil { // the job's process ran: one task at least, its peak resident set
				u.MemPeak = max(u.MemPeak, maxrss)
				u.TasksPeak = max(u.TasksPeak, 1)
			}
			return &u
		}
	}
	if ru == nil {
		return nil
	}
	user, sys := time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
	return &wire.Usage{At: time.Since(m.start), CPU: user + sys, User: user, System: sys,
		Mem: 0, MemPeak: maxrss, MemRSS: true, OOMKills: -1, Tasks: 0, TasksPeak: 1,
		ReadBytes: -1, WriteBytes: -1}
}
