package cgroup

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// fakeGroup writes files into a temporary directory: a group as Usage
// and Resident see it.
func fakeGroup(t *testing.T, files map[string]string) Group {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Group(dir)
}

func TestUsage(t *testing.T) {
	cpu := "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  Usage
	}{{
		// A job's group on a node whose jobs group passes every
		// controller down (Linux 6.x).
		name: "all controllers",
		files: map[string]string{
			"cpu.stat":       cpu,
			"memory.current": "104857600\n",
			"memory.peak":    "209715200\n",
			"memory.events":  "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
			"pids.current":   "5\n",
			"pids.peak":      "9\n",
			"io.stat":        "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n259:0 rbytes=1000 wbytes=0 rios=3 wios=0 dbytes=0 dios=0\n",
			"cgroup.threads": "1\n2\n",
		},
		want: Usage{CPU: 2500 * time.Millisecond, User: 2 * time.Second, System: 500 * time.Millisecond,
			Memory: 100 << 20, MemoryPeak: 200 << 20, OOMKills: 1, Tasks: 5, TasksPeak: 9,
			ReadBytes: 5096, WriteBytes: 8192, ReadOps: 4, WriteOps: 2},
	}, {
		// No controller enabled (a hybrid host, a bpslave in a
		// populated cgroup): cpu.stat and the group's own threads.
		name:  "no controllers",
		files: map[string]string{"cpu.stat": cpu, "cgroup.threads": "10\n11\n12\n"},
		want: Usage{CPU: 2500 * time.Millisecond, User: 2 * time.Second, System: 500 * time.Millisecond,
			Memory: -1, MemoryPeak: -1, OOMKills: -1, Tasks: 3, TasksPeak: -1,
			ReadBytes: -1, WriteBytes: -1, ReadOps: -1, WriteOps: -1},
	}, {
		// A kernel before memory.peak and pids.peak; the io controller
		// on but nothing read yet (an empty io.stat is 0, not unknown).
		name: "older kernel",
		files: map[string]string{"cpu.stat": "usage_usec 7\n", "memory.current": "4096\n",
			"pids.current": "1\n", "io.stat": "", "memory.events": "oom 0\n"},
		want: Usage{CPU: 7 * time.Microsecond, Memory: 4096, MemoryPeak: -1, OOMKills: -1,
			Tasks: 1, TasksPeak: -1},
	}, {
		name: "garbage values",
		files: map[string]string{"cpu.stat": "usage_usec x\nuser_usec 3\n", "memory.current": "max\n",
			"memory.peak": "-5\n", "pids.current": "", "io.stat": "8:0 rbytes=abc wbytes=-1 junk\n\n"},
		want: Usage{User: 3 * time.Microsecond, Memory: -1, MemoryPeak: -1, OOMKills: -1, Tasks: -1, TasksPeak: -1},
	}} {
		g := fakeGroup(t, tc.files)
		got, err := g.Usage()
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func TestUsageNoGroup(t *testing.T) {
	if _, err := Group(t.TempDir()).Usage(); err == nil {
		t.Error("a directory without cpu.stat: got no error")
	}
	if _, err := fakeGroup(t, map[string]string{"cpu.stat": "nr_periods 0\n"}).Usage(); err == nil {
		t.Error("cpu.stat without usage lines: got no error")
	}
}

func TestResident(t *testing.T) {
	g := fakeGroup(t, map[string]string{
		"cgroup.procs": "100\n200\n300\n400\n",
		// 100 and 200 run; 300 is a zombie (no Vm lines); 400 is gone.
		"proc/100/status": "Name:\tawk\nVmPeak:\t  200000 kB\nVmHWM:\t   150000 kB\nVmRSS:\t   100000 kB\nThreads:\t1\n",
		"proc/200/status": "Name:\tsh\nVmHWM:\t    2000 kB\nVmRSS:\t    1000 kB\n",
		"proc/300/status": "Name:\tx\nState:\tZ (zombie)\n",
	})
	rss, hwm, err := g.Resident(filepath.Join(string(g), "proc"))
	if err != nil {
		t.Fatal(err)
	}
	if rss != 101000*1024 || hwm != 150000*1024 {
		t.Errorf("got rss %d hwm %d; want %d %d", rss, hwm, 101000*1024, 150000*1024)
	}
	empty := fakeGroup(t, map[string]string{"cgroup.procs": ""})
	if rss, hwm, err := empty.Resident(t.TempDir()); rss != 0 || hwm != 0 || err != nil {
		t.Errorf("empty group: %d %d %v", rss, hwm, err)
	}
}

// TestUsageLive: a real group's accounting keeps the CPU time of a
// process that has ended.
func TestUsageLive(t *testing.T) {
	g := testGroup(t)
	job, err := g.MakeNew("job")
	if err != nil {
		t.Fatal(err)
	}
	u0, err := job.Usage()
	if err != nil || u0.CPU != 0 || u0.Tasks != 0 {
		t.Fatalf("new group: %+v %v; want no CPU and no tasks", u0, err)
	}
	runIn(t, job, "sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done")
	u, err := job.Usage()
	if err != nil || u.CPU <= 0 || u.User+u.System <= 0 || u.Tasks != 0 {
		t.Errorf("after a job: %+v %v; want its CPU time kept, no tasks", u, err)
	}
}

// runIn runs a command in g from its first instruction, and waits.
func runIn(t *testing.T, g Group, name string, args ...string) {
	t.Helper()
	fd, err := g.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v %s", name, err, out)
	}
}

// TestReaderRemembersAbsent: a Reader does not try again a file the
// first group lacked; a group that is gone teaches it nothing.
func TestReaderRemembersAbsent(t *testing.T) {
	var r Reader
	g := fakeGroup(t, map[string]string{"cpu.stat": "usage_usec 1\n", "cgroup.procs": "", "pids.current": "2\n"})
	if u, err := r.Usage(g); err != nil || u.Memory != -1 || u.Tasks != 2 {
		t.Fatalf("first: %+v %v", u, err)
	}
	// A sibling with memory.current: the reader no longer looks.
	g2 := fakeGroup(t, map[string]string{"cpu.stat": "usage_usec 1\n", "cgroup.procs": "", "memory.current": "5\n", "pids.current": "3\n"})
	if u, _ := r.Usage(g2); u.Memory != -1 || u.Tasks != 3 {
		t.Errorf("sibling: %+v; want memory skipped, tasks read", u)
	}
	if u, _ := g2.Usage(); u.Memory != 5 {
		t.Errorf("a fresh reader: %+v, want memory 5", u)
	}
	// A group removed between its files: nothing learned.
	var r2 Reader
	gone := Group(filepath.Join(t.TempDir(), "gone"))
	r2.read(gone, "memory.current")
	if u, _ := r2.Usage(g2); u.Memory != 5 {
		t.Errorf("after a gone group: %+v, want memory 5", u)
	}
}
