// Package cgroup is the little of Linux control groups (version 2) that
// beo uses: find the unified hierarchy and the caller's place in it, make
// and remove groups, start processes inside one, list and kill what a
// group holds.
//
// # Where jobs live
//
// bpslave puts every job in a cgroup of its own under one base group (the
// node's "jobs" group), so that it can list a job's whole process tree
// (children included, wherever they moved in the process tree), account
// for it, and kill all of it at once with cgroup.kill (Linux 5.14). The
// base is made by whoever supervises bpslave, because that one outlives
// it and must kill the jobs when bpslave dies:
//
//   - a real node: PID 1 (pkg/pid1) mounts cgroup2 at /sys/fs/cgroup,
//     makes nodefs.JobsCgroup, enables the controllers there, starts
//     bpslave with -cgroup, and kills the group whenever bpslave exits;
//   - a simulated node: beo sim makes a group of its own beside itself
//     (its cgroup's child beo-sim-PID-N), one child per node, and kills a
//     node's group when that node's bpslave exits;
//   - bpslave started alone: it makes beo-jobs under its own cgroup, and
//     kills what an earlier run left there when it starts.
//
// A job's process enters its group at birth: clone3(CLONE_INTO_CGROUP)
// through os/exec's SysProcAttr.UseCgroupFD, so no instruction of the
// program runs outside it and nothing is written after the fork.
//
// The no-internal-process rule of cgroup v2 decides where controllers
// (memory, pids, cpu, io) can be enabled: only in a group that holds no
// processes itself, or the root. The jobs groups above hold none, so
// jobs get the controllers their parents pass down; where a parent holds
// processes (a bpslave started alone in a populated cgroup) they get
// none, and still get cgroup.procs, cgroup.kill, cgroup.events and the
// cpu.stat every group has.
//
// Errors name the file. Nothing here is cached: a group is a directory.
//
// Control files are read and written with plain system calls (readFile,
// write): open, read or write, close. os.ReadFile would also register
// each one with the runtime's poller (cgroup files are pollable), and
// take it off again — five more system calls for every file, and a job's
// end reads several.
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
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Mountpoint returns where the cgroup v2 hierarchy is mounted, as
// /proc/self/mountinfo lists it: /sys/fs/cgroup on a unified system,
// /sys/fs/cgroup/unified on a hybrid one. ErrNone if it is not mounted.
func Mountpoint() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	return parseMountinfo(b)
}

// ErrNone reports that no cgroup v2 hierarchy is mounted.
var ErrNone = errors.New("no cgroup2 file system mounted")

// parseMountinfo finds the first cgroup2 mount in a mountinfo file.
func parseMountinfo(b []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER
		f := strings.Fields(sc.Text())
		for i, x := range f {
			if x == "-" && i+1 < len(f) && len(f) > 4 {
				if f[i+1] == "cgroup2" {
					return unescape(f[4]), nil
				}
				break
			}
		}
	}
	return "", ErrNone
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Self returns the calling process's cgroup v2 group as a directory
// under the mount point.
func Self() (Group, error) {
	mnt, err := Mountpoint()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	p, err := parseSelf(b)
	if err != nil {
		return "", err
	}
	return Group(filepath.Join(mnt, p)), nil
}

// parseSelf finds the unified ("0::") line of /proc/self/cgroup.
func parseSelf(b []byte) (string, error) {
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			if !strings.HasPrefix(p, "/") {
				return "", fmt.Errorf("cgroup %q: not a path", p)
			}
			// "(deleted)" follows a group removed under us; a group
			// outside our cgroup namespace shows as /../…: neither is
			// a place to work in.
			if strings.HasSuffix(p, " (deleted)") || strings.HasPrefix(p, "/..") {
				return "", fmt.Errorf("cgroup %q: not usable", p)
			}
			return p, nil
		}
	}
	return "", errors.New("no cgroup v2 entry in /proc/self/cgroup")
}

// Group is a cgroup: its directory in the cgroup2 file system.
type Group string

func (g Group) file(name string) string { return filepath.Join(string(g), name) }

// Make creates (or reuses) the child group name.
func (g Group) Make(name string) (Group, error) {
	c := Group(g.file(name))
	if err := os.Mkdir(string(c), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	return c, nil
}

// MakeNew creates the child group name, which must not exist yet.
func (g Group) MakeNew(name string) (Group, error) {
	c := Group(g.file(name))
	if err := os.Mkdir(string(c), 0o755); err != nil {
		return "", err
	}
	return c, nil
}

// Parent is the group above g.
func (g Group) Parent() Group { return Group(filepath.Dir(string(g))) }

// Exists reports whether g is a cgroup directory.
func (g Group) Exists() bool {
	_, err := os.Stat(g.file("cgroup.procs"))
	return err == nil
}

// Controllers lists the controllers available in g.
func (g Group) Controllers() ([]string, error) {
	b, err := readFile(g.file("cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

// Enable enables, for g's children, each of want that g has (cgroup.
// subtree_control), one at a time so that one refused does not stop the
// others. It returns the ones enabled and the refusals (EBUSY: g holds
// processes and is not the root).
func (g Group) Enable(want ...string) ([]string, error) {
	have, err := g.Controllers()
	if err != nil {
		return nil, err
	}
	var on []string
	var errs []error
	for _, c := range want {
		if !contains(have, c) {
			continue
		}
		if err := write(g.file("cgroup.subtree_control"), "+"+c); err != nil {
			errs = append(errs, fmt.Errorf("enable %s in %s: %w", c, g, err))
			continue
		}
		on = append(on, c)
	}
	return on, errors.Join(errs...)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// SetMax writes a limit file of g (memory.max, pids.max): v, or "max"
// when v is negative.
func (g Group) SetMax(file string, v int64) error {
	s := "max"
	if v >= 0 {
		s = strconv.FormatInt(v, 10)
	}
	return write(g.file(file), s)
}

// Open opens g for SysProcAttr.CgroupFD (clone3 CLONE_INTO_CGROUP).
func (g Group) Open() (*os.File, error) {
	fd, err := unix.Open(string(g), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: string(g), Err: err}
	}
	return os.NewFile(uintptr(fd), string(g)), nil
}

// Add moves pid into g.
func (g Group) Add(pid int) error {
	return write(g.file("cgroup.procs"), strconv.Itoa(pid))
}

// Procs lists the processes in g itself (not its children), in the
// order the kernel gives: no zombies, no duplicates.
func (g Group) Procs() ([]int, error) {
	b, err := readFile(g.file("cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// Populated reports whether g or any descendant holds a live process
// (cgroup.events; a group of zombies is empty).
func (g Group) Populated() (bool, error) {
	b, err := readFile(g.file("cgroup.events"))
	if err != nil {
		return false, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "populated "); ok {
			return v == "1", nil
		}
	}
	return false, fmt.Errorf("%s: no populated line", g.file("cgroup.events"))
}

// Children lists g's child groups.
func (g Group) Children() ([]Group, error) {
	es, err := os.ReadDir(string(g))
	if err != nil {
		return nil, err
	}
	var out []Group
	for _, e := range es {
		if e.IsDir() {
			out = append(out, Group(g.file(e.Name())))
		}
	}
	return out, nil
}

// Kill sends SIGKILL to every process in g and its descendants. With
// cgroup.kill (Linux 5.14) the kernel does it at once and no fork
// escapes; without it each group's processes are killed in rounds until
// none is left (a fork racing the kill is caught by the next round).
func (g Group) Kill() error {
	err := write(g.file("cgroup.kill"), "1")
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return err
	case !g.Exists():
		return nil // the group is gone: nothing to kill
	}
	for round := 0; round < 100; round++ { // no cgroup.kill: Linux < 5.14
		n, err := g.killRound()
		if err != nil || n == 0 {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("kill %s: processes keep appearing", g)
}

// write writes s to an existing control file in one write(2).
func write(path, s string) error {
	fd, err := open(path, unix.O_WRONLY)
	if err != nil {
		return err
	}
	_, err = ignoringEINTR(func() (int, error) { return unix.Write(fd, []byte(s)) })
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return &fs.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
}

// readFile reads a control file whole.
func readFile(path string) ([]byte, error) {
	fd, err := open(path, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	b := make([]byte, 0, 512)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := ignoringEINTR(func() (int, error) { return unix.Read(fd, b[len(b):cap(b)]) })
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

func open(path string, mode int) (int, error) {
	fd, err := ignoringEINTR(func() (int, error) { return unix.Open(path, mode|unix.O_CLOEXEC, 0) })
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

func ignoringEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != unix.EINTR {
			return n, err
		}
	}
}

// killRound kills every process in g's subtree and returns how many it
// found.
func (g Group) killRound() (int, error) {
	n := 0
	err := filepath.WalkDir(string(g), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		pids, err := Group(p).Procs()
		if err != nil {
			return nil // removed meanwhile
		}
		for _, pid := range pids {
			if unix.Kill(pid, unix.SIGKILL) == nil {
				n++
			}
		}
		return nil
	})
	return n, err
}

// Remove kills what g holds, waits up to wait for it to be empty and
// removes g and its descendants. A group already gone is no error. An
// empty group without children — a job's, once it ended — is removed by
// one rmdir(2), which the kernel refuses (EBUSY) for any other.
func (g Group) Remove(wait time.Duration) error {
	if err := syscall.Rmdir(string(g)); err == nil || errors.Is(err, syscall.ENOENT) {
		return nil
	}
	if !g.Exists() {
		return nil
	}
	if err := g.Kill(); err != nil {
		return err
	}
	if err := g.WaitEmpty(wait); err != nil {
		return err
	}
	return g.rmdirAll()
}

// WaitEmpty polls cgroup.events until g holds no live process, for at
// most d.
func (g Group) WaitEmpty(d time.Duration) error {
	deadline := time.Now().Add(d)
	pause := 100 * time.Microsecond
	for {
		pop, err := g.Populated()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !pop {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: still populated after %s", g, d)
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// rmdirAll removes g's descendants depth first, then g.
func (g Group) rmdirAll() error {
	kids, err := g.Children()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, k := range kids {
		if err := k.rmdirAll(); err != nil {
			return err
		}
	}
	if err := syscall.Rmdir(string(g)); err != nil && !errors.Is(err, syscall.ENOENT) {
		return &fs.PathError{Op: "rmdir", Path: string(g), Err: err}
	}
	return nil
}
