package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestParseMountinfo(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		err            bool
	}{
		{"unified", "24 1 0:22 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n", "/sys/fs/cgroup", false},
		{"hybrid", "30 25 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n", "/sys/fs/cgroup/unified", false},
		{"escaped", `41 31 0:38 / /mnt/a\040b rw - cgroup2 none rw` + "\n", "/mnt/a b", false},
		{"v1 only", "30 25 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", "", true},
		{"garbage", "x\n - \n-\n", "", true},
	} {
		got, err := parseMountinfo([]byte(tc.in))
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("%s: got %q, %v; want %q, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestParseSelf(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{"0::/user.slice/session-1.scope\n", "/user.slice/session-1.scope", false},
		{"4:memory:/x\n1:cpu:/\n0::/\n", "/", false},
		{"0::/gone (deleted)\n", "", true},
		{"0::/../outside\n", "", true},
		{"4:memory:/x\n", "", true},
	} {
		got, err := parseSelf([]byte(tc.in))
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("%q: got %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// testGroup makes a group under the test's own cgroup, or skips.
func testGroup(t *testing.T) Group {
	t.Helper()
	self, err := Self()
	if err != nil {
		t.Skipf("no cgroup v2: %v", err)
	}
	g, err := self.MakeNew(fmt.Sprintf("beo-cgroup-test-%d", os.Getpid()))
	if err != nil {
		t.Skipf("cannot make a cgroup here: %v", err)
	}
	t.Cleanup(func() {
		if err := g.Remove(5 * time.Second); err != nil {
			t.Error(err)
		}
	})
	return g
}

// TestTreeKill: a process cloned into a group, with a child that left
// its process group and session, is listed, counted and killed whole;
// the group then goes.
func TestTreeKill(t *testing.T) {
	g := testGroup(t)
	job, err := g.MakeNew("job")
	if err != nil {
		t.Fatal(err)
	}
	fd, err := job.Open()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "setsid sleep 301 & exec sleep 302")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fd.Close()
	defer cmd.Process.Kill()
	var procs []int
	deadline := time.Now().Add(5 * time.Second)
	for len(procs) < 2 && time.Now().Before(deadline) {
		procs, _ = job.Procs()
		time.Sleep(5 * time.Millisecond)
	}
	if len(procs) != 2 || !slices.Contains(procs, cmd.Process.Pid) {
		t.Fatalf("procs %v: want the job's process %d and its child", procs, cmd.Process.Pid)
	}
	if pop, err := g.Populated(); !pop || err != nil {
		t.Errorf("populated: %v %v, want true", pop, err)
	}
	if st, err := job.Usage(); err != nil || st.CPU <= 0 {
		t.Errorf("stat: %+v %v: want some CPU time", st, err)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if err := g.WaitEmpty(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(time.Second); err != nil {
		t.Fatal(err)
	}
	if g.Exists() || job.Exists() {
		t.Error("groups still exist after Remove")
	}
}
