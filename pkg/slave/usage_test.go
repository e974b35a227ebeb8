package slave

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/cgroup"
	"github.com/beo-cluster/beo/pkg/wire"
)

// writeFiles writes name → body under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMeter: the meter keeps the peaks a group without memory.peak or
// pids.peak cannot, falls back to the processes' resident sets without
// the memory controller, and folds the job's rusage into the final
// reading.
func TestMeter(t *testing.T) {
	dir := t.TempDir()
	g := cgroup.Group(dir)
	proc := filepath.Join(dir, "proc")
	m := meter{start: time.Now().Add(-3 * time.Second)}
	// No controllers: cpu.stat, cgroup.threads, and /proc.
	writeFiles(t, dir, map[string]string{
		"cpu.stat":        "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n",
		"cgroup.procs":    "10\n11\n",
		"cgroup.threads":  "10\n11\n12\n",
		"proc/10/status":  "VmHWM:\t 90000 kB\nVmRSS:\t 80000 kB\n",
		"proc/11/status":  "VmHWM:\t  1000 kB\nVmRSS:\t  1000 kB\n",
		"proc/12/status":  "garbage",
		"proc/99/status":  "VmRSS:\t 999999 kB\n", // not the job's
		"memory.pressure": "some avg10=0.00\n",
	})
	u, err := m.read(&jobGroup{g: g, rd: &cgroup.Reader{}}, proc)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.Usage{At: u.At, CPU: 1500 * time.Millisecond, User: time.Second, System: 500 * time.Millisecond,
		Mem: 81000 * 1024, MemPeak: 90000 * 1024, MemRSS: true, OOMKills: -1, Tasks: 3, TasksPeak: 3,
		ReadBytes: -1, WriteBytes: -1, Tree: true}
	if u != want || u.At < 3*time.Second {
		t.Errorf("first reading:\n got %+v\nwant %+v", u, want)
	}
	// Later: one process left, smaller; the peaks stay.
	writeFiles(t, dir, map[string]string{"cgroup.procs": "11\n", "cgroup.threads": "11\n",
		"cpu.stat": "usage_usec 2000000\nuser_usec 1400000\nsystem_usec 600000\n"})
	u, _ = m.read(&jobGroup{g: g, rd: &cgroup.Reader{}}, proc)
	if u.Mem != 1000*1024 || u.MemPeak != 90000*1024 || u.Tasks != 1 || u.TasksPeak != 3 || u.CPU != 2*time.Second {
		t.Errorf("second reading: %+v; want mem 1000 KiB, the peaks of the first, 2 s CPU", u)
	}
	// The end: nothing runs; the job's process's rusage says it once
	// had 120000 KiB resident.
	writeFiles(t, dir, map[string]string{"cgroup.procs": "", "cgroup.threads": ""})
	f := m.final(&jobGroup{g: g, rd: &cgroup.Reader{}}, &syscall.Rusage{Maxrss: 120000})
	// final reads the real /proc: an empty group needs none of it.
	if f == nil || f.Mem != 0 || f.MemPeak != 120000*1024 || f.Tasks != 0 || f.TasksPeak != 3 || !f.Tree {
		t.Errorf("final: %+v; want no memory now, the rusage peak, 3 tasks at most", f)
	}

	// With every controller, the group's own peaks win.
	dir2 := t.TempDir()
	writeFiles(t, dir2, map[string]string{
		"cpu.stat": "usage_usec 10\n", "memory.current": "4096\n", "memory.peak": "8192\n",
		"pids.current": "2\n", "pids.peak": "7\n", "io.stat": "8:0 rbytes=1 wbytes=2 rios=1 wios=1\n",
		"memory.events": "oom_kill 2\n",
	})
	m2 := meter{start: time.Now()}
	u, _ = m2.read(&jobGroup{g: cgroup.Group(dir2), rd: &cgroup.Reader{}}, proc)
	if u.Mem != 4096 || u.MemPeak != 8192 || u.MemRSS || u.Tasks != 2 || u.TasksPeak != 7 ||
		u.ReadBytes != 1 || u.WriteBytes != 2 || u.OOMKills != 2 {
		t.Errorf("all controllers: %+v", u)
	}

	// No group: the rusage alone.
	m3 := meter{start: time.Now()}
	f = m3.final(nil, &syscall.Rusage{Utime: syscall.Timeval{Sec: 1}, Stime: syscall.Timeval{Usec: 250000}, Maxrss: 2048})
	if f == nil || f.Tree || f.CPU != 1250*time.Millisecond || f.User != time.Second || f.MemPeak != 2<<20 || f.TasksPeak != 1 {
		t.Errorf("rusage only: %+v", f)
	}
	if f := m3.final(nil, nil); f != nil {
		t.Errorf("neither group nor rusage: %+v, want nil", f)
	}
}

// burn is an awk program that holds 64 MiB and burns CPU for about a
// second.
var burn = []string{"awk", `BEGIN { s = "x"; for (i = 0; i < 26; i++) s = s s; for (i = 0; i < 10000000; i++) n++; print length(s) }`}

// TestExecUsage: a job that burns CPU and holds memory is reported
// while it runs (with a cgroup) and accounted in its Result, with and
// without a cgroup.
func TestExecUsage(t *testing.T) {
	for _, tc := range []struct {
		name, cgroup string
	}{{"own cgroup", ""}, {"no cgroup", jobsNone}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newMaster(t, steady)
			startSlave(t, m, func(c *Config) { c.Cgroup, c.UsageInterval = tc.cgroup, 200*time.Millisecond })
			s := m.next(t)
			r := s.start(t, wire.Exec{Argv: burn}, program(t, "/usr/bin/awk"), execOpts{})
			if r.err != "" {
				t.Fatal(r.err)
			}
			start := time.Now()
			if res := r.wait(t); res != (wire.Result{}) || r.stdout.String() != "67108864\n" {
				t.Fatalf("result %+v, stdout %q", res, r.stdout.String())
			}
			took := time.Since(start)
			u := r.usage
			if u == nil {
				t.Fatal("no Usage in the Result")
			}
			t.Logf("ran %s; usage %+v; %d updates", took.Round(time.Millisecond), *u, len(r.updates))
			// cpu.stat's usage is the scheduler's exact runtime, user and
			// system are split from ticks: close, not equal.
			split := (u.User + u.System - u.CPU).Abs()
			if u.CPU < 100*time.Millisecond || split > u.CPU/10+10*time.Millisecond || u.MemPeak < 64<<20 || u.At < u.CPU/2 || u.At > took+time.Second {
				t.Errorf("final usage %+v: want ≥ 100 ms CPU (≈ user+system), ≥ 64 MiB peak, the job's age", *u)
			}
			if !u.Tree { // no cgroup: nothing but the Result
				if tc.cgroup != jobsNone {
					t.Log("the slave could make no cgroup here: rusage only")
				}
				if len(r.updates) != 0 {
					t.Errorf("updates without a cgroup: %+v", r.updates)
				}
				return
			}
			if u.Tasks != 0 || u.TasksPeak < 1 {
				t.Errorf("final tasks %d, peak %d: want 0 and at least 1", u.Tasks, u.TasksPeak)
			}
			var seen []wire.Usage
			for _, up := range r.updates {
				if up.Usage != nil {
					seen = append(seen, *up.Usage)
				}
			}
			if len(seen) == 0 {
				t.Fatal("no usage update while the job ran")
			}
			first, last := seen[0], seen[len(seen)-1]
			if first.At < 200*time.Millisecond || first.Tasks < 1 || last.CPU > u.CPU || last.At > u.At {
				t.Errorf("updates %+v: want the first after an interval with a task, none beyond the final %+v", seen, *u)
			}
		})
	}
}
