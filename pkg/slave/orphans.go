package slave

import (
	"sync"

	"golang.org/x/sys/unix"
)

// No orphans.
//
// A job lives only as long as the master that started it can reach it,
// as under BProc. When a session ends — the master closed it or was
// restarted, three ping intervals passed without a ping, or bpslave is
// stopping — every job the slave runs is killed at once (its jobs
// group's cgroup.kill; without cgroups each job's process group gets
// SIGKILL). A job whose client went away, its master still there, is
// hung up instead (SIGHUP, SIGKILL after hangupGrace: exec.go).
//
// bpslave cannot do this when it is killed itself (SIGKILL, a crash):
// whoever started it does. PID 1 on a real node and beo sim for a
// simulated one made the jobs group and kill it the moment bpslave
// exits (pkg/pid1, pkg/sim); a bpslave started by hand kills and removes
// what its predecessor left when it starts (openJobs).

// live is the set of jobs running on this slave.
type live struct {
	mu   sync.Mutex
	jobs map[*running]struct{}
}

// track records r until the returned func runs.
func (l *live) track(r *running) (untrack func()) {
	l.mu.Lock()
	if l.jobs == nil {
		l.jobs = map[*running]struct{}{}
	}
	l.jobs[r] = struct{}{}
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.jobs, r)
		l.mu.Unlock()
	}
}

func (l *live) all() []*running {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*running, 0, len(l.jobs))
	for r := range l.jobs {
		out = append(out, r)
	}
	return out
}

// killJobs kills every job this slave runs, now: its master is gone.
func (s *slave) killJobs(why string) {
	rs := s.live.all()
	if len(rs) == 0 && !s.jobs.on() {
		return
	}
	if err := s.jobs.killAll(); err != nil {
		s.log.Warn("kill jobs", "why", why, "err", err)
	}
	for _, r := range rs {
		if r.cg == nil { // the group kill did not reach it
			r.signal(unix.SIGKILL)
		}
	}
	if len(rs) > 0 {
		s.log.Warn("killed every job", "why", why, "jobs", len(rs))
	}
}
