package pid1

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bootparam"
	"github.com/beo-cluster/beo/pkg/cgroup"
	"golang.org/x/sys/unix"
)

// TestSupervisorKillsJobs: when bpslave dies (SIGKILL: nothing in it
// runs), init kills every job in the jobs group within a second, before
// it starts bpslave again — how a real node keeps the promise of pkg/slave
// orphans.go. A fake bpslave puts a "job" in the group and then sleeps.
func TestSupervisorKillsJobs(t *testing.T) {
	self, err := cgroup.Self()
	if err != nil {
		t.Skipf("no cgroup v2: %v", err)
	}
	jobs, err := self.MakeNew(fmt.Sprintf("beo-pid1-test-%d", os.Getpid()))
	if err != nil {
		t.Skipf("cannot make a cgroup here: %v", err)
	}
	t.Cleanup(func() { jobs.Remove(5 * time.Second) })
	r := NewReaper(quiet())
	defer r.Stop()
	dir := t.TempDir()
	bin := filepath.Join(dir, "beo")
	script := fmt.Sprintf("#!/bin/sh\nsleep 300 &\necho $! > %s/cgroup.procs\necho $! >> %s/jobs\nexec sleep 60\n", jobs, dir)
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	null, _ := os.Open(os.DevNull)
	defer null.Close()
	sv := &supervisor{log: quiet(), reaper: r, binary: bin, env: []string{"PATH=/bin:/usr/bin"},
		stdin: null, stdout: null, params: bootparam.Defaults(), running: map[string]*os.Process{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); sv.wait() }()
	sv.run(ctx, Service{Name: "bpslave", Exited: KillJobs(jobs)})
	jobPids := func() []int {
		b, _ := os.ReadFile(filepath.Join(dir, "jobs"))
		var out []int
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			out = append(out, n)
		}
		return out
	}
	// The script writes the group first and the pid file second: wait for both.
	if !within(10*time.Second, func() bool { p, _ := jobs.Procs(); return len(p) == 1 && len(jobPids()) == 1 }) {
		t.Fatal("the fake bpslave's job never entered the jobs group")
	}
	job := jobPids()[0]
	slave := sv.pids()["bpslave"]
	if err := unix.Kill(slave, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if !within(time.Second, func() bool { return gone(job) }) {
		t.Fatalf("job %d still alive 1 s after its bpslave was killed", job)
	}
	t.Logf("job gone %s after bpslave was killed", time.Since(killed).Round(time.Millisecond))
	// The restarted bpslave's job is a new one, and it runs.
	if !within(10*time.Second, func() bool { return len(jobPids()) == 2 && !gone(jobPids()[1]) }) {
		t.Fatalf("bpslave not restarted with a new job: %v", jobPids())
	}
}

// gone reports whether pid has exited (a zombie counts).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || len(b) < i+3 || b[i+2] == 'Z'
}
