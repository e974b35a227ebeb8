package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Usage is what a group's accounting files say about everything that
// ever ran in it: the kernel keeps a process's CPU time, I/O and peak
// memory in its group after the process is gone, for as long as the
// group exists. A field is -1 where its file is absent: the controller
// is not enabled for the group (the no-internal-process rule, see the
// package doc), or the kernel predates the file.
type Usage struct {
	// cpu.stat usage_usec, user_usec, system_usec: every group has them,
	// with or without the cpu controller.
	CPU, User, System time.Duration
	// memory.current: bytes charged to the group (anonymous memory, page
	// cache, kernel memory); memory.peak (Linux 5.19) the highest it has
	// been; memory.events oom_kill, processes the OOM killer killed.
	Memory, MemoryPeak, OOMKills int64
	// pids.current: tasks (processes and threads). Without the pids
	// controller, the tasks of the group itself (cgroup.threads, which
	// every group has: a job's group has no children). pids.peak
	// (newer kernels) the highest it has been.
	Tasks, TasksPeak int64
	// io.stat, summed over devices: bytes and operations that reached a
	// block device (not page-cache hits, not network file systems).
	ReadBytes, WriteBytes, ReadOps, WriteOps int64
}

// Usage reads g's accounting files. Only cpu.stat is required: a
// directory without it is no cgroup (or is gone), and that is the error.
func (g Group) Usage() (Usage, error) {
	var r Reader
	return r.Usage(g)
}

// A Reader reads the accounting of many groups of one kind (a node's
// jobs: siblings, with the same controllers on the same kernel), and
// remembers which files the first reading found absent, so that the
// next ones do not try them again: a job's last reading is on the way
// to its Result, and on a host without controllers half the files are
// absent. The zero Reader is ready; it is safe for concurrent use.
type Reader struct {
	mu     sync.Mutex
	absent map[string]bool
}

// Usage reads g's accounting files, as Group.Usage does.
func (r *Reader) Usage(g Group) (Usage, error) {
	u := Usage{Memory: -1, MemoryPeak: -1, OOMKills: -1, Tasks: -1, TasksPeak: -1,
		ReadBytes: -1, WriteBytes: -1, ReadOps: -1, WriteOps: -1}
	b, err := readFile(g.file("cpu.stat"))
	if err != nil {
		return u, err
	}
	if err := parseCPUStat(b, &u); err != nil {
		return u, fmt.Errorf("%s: %w", g.file("cpu.stat"), err)
	}
	// Only a group that exists teaches which files are absent.
	u.Memory = r.int(g, "memory.current")
	u.MemoryPeak = r.int(g, "memory.peak")
	if b := r.read(g, "memory.events"); b != nil {
		u.OOMKills = keyed(b, "oom_kill")
	}
	u.Tasks = r.int(g, "pids.current")
	if u.Tasks < 0 {
		if b := r.read(g, "cgroup.threads"); b != nil {
			u.Tasks = int64(bytes.Count(b, []byte{'\n'}))
		}
	}
	u.TasksPeak = r.int(g, "pids.peak")
	if b := r.read(g, "io.stat"); b != nil {
		parseIOStat(b, &u)
	}
	return u, nil
}

// read reads g's file name, nil if it is absent (now or before).
func (r *Reader) read(g Group, name string) []byte {
	r.mu.Lock()
	skip := r.absent[name]
	r.mu.Unlock()
	if skip {
		return nil
	}
	b, err := readFile(g.file(name))
	if errors.Is(err, fs.ErrNotExist) && Group(g).Exists() {
		r.mu.Lock()
		if r.absent == nil {
			r.absent = map[string]bool{}
		}
		r.absent[name] = true
		r.mu.Unlock()
	}
	if err != nil {
		return nil
	}
	if b == nil {
		b = []byte{} // present and empty: not absent
	}
	return b
}

// int reads a file of g holding one integer; -1 if it is absent or
// says something else ("max").
func (r *Reader) int(g Group, name string) int64 {
	b := r.read(g, name)
	if b == nil {
		return -1
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v < 0 {
		return -1
	}
	return v
}

// parseCPUStat reads the usage_usec, user_usec and system_usec lines of
// cpu.stat ("usage_usec 1234\nuser_usec 1000\n…").
func parseCPUStat(b []byte, u *Usage) error {
	seen := 0
	for _, f := range []struct {
		key string
		d   *time.Duration
	}{{"usage_usec", &u.CPU}, {"user_usec", &u.User}, {"system_usec", &u.System}} {
		if v := keyed(b, f.key); v >= 0 {
			*f.d = time.Duration(v) * time.Microsecond
			seen++
		}
	}
	if seen == 0 {
		return errors.New("no usage_usec")
	}
	return nil
}

// keyed returns the value of the "key value" line of a flat-keyed file
// (cpu.stat, memory.events), -1 if there is none.
func keyed(b []byte, key string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < 0 {
				return -1
			}
			return n
		}
	}
	return -1
}

// parseIOStat sums io.stat's per-device lines ("8:0 rbytes=90112
// wbytes=0 rios=3 wios=0 dbytes=0 dios=0"). The file exists, empty,
// once the io controller is on and nothing was read: that is 0, not
// unknown.
func parseIOStat(b []byte, u *Usage) {
	u.ReadBytes, u.WriteBytes, u.ReadOps, u.WriteOps = 0, 0, 0, 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		for _, kv := range f[min(1, len(f)):] {
			k, v, ok := strings.Cut(kv, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			if !ok || err != nil || n < 0 {
				continue
			}
			switch k {
			case "rbytes":
				u.ReadBytes += n
			case "wbytes":
				u.WriteBytes += n
			case "rios":
				u.ReadOps += n
			case "wios":
				u.WriteOps += n
			}
		}
	}
}

// Resident is the memory of g's processes as /proc tells it, for a group
// without the memory controller: the sum of their resident sets (VmRSS:
// pages shared between them count in each), and the highest resident
// set any one of them ever had (VmHWM). proc is the proc file system
// ("" = /proc). A process that ends while Resident reads is left out;
// an empty group is 0, 0.
func (g Group) Resident(proc string) (rss, hwm int64, err error) {
	if proc == "" {
		proc = "/proc"
	}
	pids, err := g.Procs()
	if err != nil {
		return 0, 0, err
	}
	for _, pid := range pids {
		b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "status"))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
				continue // gone meanwhile
			}
			return 0, 0, err
		}
		r, h := parseStatusMem(b)
		rss += r
		hwm = max(hwm, h)
	}
	return rss, hwm, nil
}

// parseStatusMem reads VmRSS and VmHWM from /proc/PID/status, in bytes
// (the file says kB). A kernel thread or a zombie has neither: 0.
func parseStatusMem(b []byte) (rss, hwm int64) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			continue
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		if k == "VmRSS" {
			rss = n
		} else {
			hwm = n
		}
	}
	return rss, hwm
}
