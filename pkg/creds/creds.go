// Package creds lets a root daemon touch the filesystem as another user
// without ever being that user anywhere else.
//
// bpmaster reads a program and its libraries as the calling user, and
// bpslave writes bpcp files and opens bpsh -I/-O/-E redirections on a node
// as the calling user: the kernel's own permission checks then decide, so a
// user can reach exactly what they could reach at a shell, and nothing is
// reimplemented.
//
// # How
//
// Linux keeps credentials per thread; glibc and Go's syscall.Setuid make
// them process-wide by repeating the call on every thread. Do issues the raw
// setgroups, setfsgid and setfsuid system calls instead, which change only
// the calling thread, and it does so on a fresh goroutine locked to its OS
// thread. When fn returns (or panics) that goroutine puts the thread's own
// groups, fsgid and fsuid back and checks they took — setfsuid and
// setfsgid report the value in force, so a second call tells — and only
// then unlocks: the thread goes back to the runtime exactly as it was, and
// no other goroutine is ever scheduled on a thread carrying the borrowed
// identity. If the restore cannot be confirmed, the goroutine exits still
// locked and the Go runtime destroys the thread instead. (Threads the
// runtime creates while fn runs are cloned from its template thread, not
// from the locked one, so they do not inherit the identity either.)
//
// Keeping the thread is what makes Do cheap: the goroutine usually runs
// on the caller's own thread (the caller blocks on it), so a Do is a
// dozen system calls. Ending the thread every time, as Do first did, cost
// ~100 µs here — a new thread for the scheduler, and a context switch —
// on every exec of a non-root caller, once on the master and once on the
// node (BenchmarkDo).
//
// Only the filesystem identity (fsuid, fsgid, supplementary groups) is
// borrowed. The effective uid stays 0, but a non-zero fsuid drops the
// thread's filesystem capabilities (CAP_DAC_OVERRIDE, CAP_FOWNER, …), so
// open, creat, mkdir, rename, chmod and friends are checked exactly as for
// the user; Do empties the thread's other effective capabilities too
// (CAP_SYS_PTRACE would let /proc/PID/cwd of another user's process be
// followed) and puts them all back after. fn must do its filesystem work on its own goroutine: anything it
// hands to another goroutine runs as the process.
//
// A thread whose restore failed still ends, and that has one side effect
// to know about: Linux sends a child's Pdeathsig when the *thread* that
// forked it exits (go.dev/issue/27505). A process that uses Do must start
// Pdeathsig children from a goroutine locked to its thread for the
// child's whole life, or not use Pdeathsig.
//
// When c is the process's own identity (uid, gid and groups), Do runs fn
// on the calling goroutine: there is nothing to borrow, and a root caller
// of a root daemon does not pay for a thread.
//
// Not running as root, Do cannot switch: it runs fn unchanged when the
// credential is the process's own uid (a simulated node, or a test, run by
// the same user as its clients) and refuses otherwise.
package creds

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"github.com/beo-cluster/beo/pkg/wire"
	"golang.org/x/sys/unix"
)

// Do runs fn with the filesystem identity c and returns fn's error.
func Do(c wire.Cred, fn func() error) error {
	if euid := os.Geteuid(); euid != 0 {
		if c.UID != uint32(euid) {
			return fmt.Errorf("cannot act as uid %d: not running as root", c.UID)
		}
		return fn()
	}
	if own(c) {
		return fn() // nothing to borrow: every thread already is c
	}
	type outcome struct {
		err   error
		panic any
	}
	done := make(chan outcome, 1)
	go func() {
		runtime.LockOSThread()
		back, err := save()
		if err != nil {
			runtime.UnlockOSThread() // nothing was changed
			done <- outcome{err: err}
			return
		}
		var o outcome
		if o.err = become(c); o.err == nil && c.UID != 0 {
			o.err = dropEffective(back.caps)
		}
		if o.err == nil {
			func() {
				defer func() {
					if p := recover(); p != nil {
						o.panic = p
					}
				}()
				o.err = fn()
			}()
		}
		if back.restore() == nil {
			runtime.UnlockOSThread() // the thread is the process's again
		} // else: exit locked, and the runtime destroys the thread
		done <- o
	}()
	o := <-done
	if o.panic != nil {
		panic(o.panic) // re-raised on the caller's goroutine, as if fn ran here
	}
	return o.err
}

// identity is a thread's filesystem identity, and its capabilities
// (which a change of fsuid moves): what Do puts back.
type identity struct {
	uid, gid uint32
	groups   []uint32
	caps     [2]unix.CapUserData
}

// save reads the calling thread's filesystem identity. setfsuid and
// setfsgid with an id that is never valid (-1) change nothing and return
// the one in force.
func save() (identity, error) {
	n, _, e := unix.RawSyscall(unix.SYS_GETGROUPS, 0, 0, 0)
	if e != 0 {
		return identity{}, fmt.Errorf("creds: getgroups: %w", e)
	}
	id := identity{groups: make([]uint32, n)}
	if n > 0 {
		m, _, e := unix.RawSyscall(unix.SYS_GETGROUPS, n, uintptr(unsafe.Pointer(&id.groups[0])), 0)
		if e != 0 {
			return identity{}, fmt.Errorf("creds: getgroups: %w", e)
		}
		id.groups = id.groups[:m]
	}
	uid, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, ^uintptr(0), 0, 0)
	gid, _, _ := unix.RawSyscall(unix.SYS_SETFSGID, ^uintptr(0), 0, 0)
	id.uid, id.gid = uint32(uid), uint32(gid)
	var err error
	id.caps, err = capsOf()
	return id, err
}

// capsOf reads the calling thread's capability sets.
func capsOf() ([2]unix.CapUserData, error) {
	var d [2]unix.CapUserData
	h := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capget(&h, &d[0]); err != nil {
		return d, fmt.Errorf("creds: capget: %w", err)
	}
	return d, nil
}

// restore puts the identity back on the calling thread and confirms it:
// fsuid, groups and fsgid as save found them, and the capability sets
// exactly as they were (setting fsuid 0 again re-enables the filesystem
// capabilities from the permitted set, which is what they were for a
// root daemon; if not, the thread is not given back).
func (id identity) restore() error {
	// The capabilities first: setgroups needs CAP_SETGID back.
	h := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	want := id.caps
	if err := unix.Capset(&h, &want[0]); err != nil {
		return fmt.Errorf("creds: capset: %w", err)
	}
	if err := become(wire.Cred{UID: id.uid, GID: id.gid, Groups: id.groups}); err != nil {
		return err
	}
	caps, err := capsOf()
	if err != nil {
		return err
	}
	if caps != id.caps {
		return fmt.Errorf("creds: capabilities %v after the restore, want %v", caps, id.caps)
	}
	return nil
}

// dropEffective empties the calling thread's effective capabilities,
// keeping the permitted set (restore takes them back from it). A
// non-zero fsuid drops only the filesystem ones; the others would still
// act for the user: CAP_SYS_PTRACE let /proc/PID/cwd of another user's
// process be followed, CAP_SYS_RESOURCE would pass quotas.
func dropEffective(caps [2]unix.CapUserData) error {
	caps[0].Effective, caps[1].Effective = 0, 0
	h := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capset(&h, &caps[0]); err != nil {
		return fmt.Errorf("creds: drop capabilities: %w", err)
	}
	return nil
}

// own reports whether c is exactly the identity this process's threads
// have (a root caller of a root daemon, usually): uid, gid and the same
// supplementary groups, in any order.
func own(c wire.Cred) bool {
	if uint32(os.Geteuid()) != c.UID || uint32(os.Getegid()) != c.GID {
		return false
	}
	gs, err := unix.Getgroups()
	if err != nil || len(gs) != len(c.Groups) {
		return false
	}
	have := make(map[uint32]bool, len(gs))
	for _, g := range gs {
		have[uint32(g)] = true
	}
	for _, g := range c.Groups {
		if !have[g] {
			return false
		}
	}
	return true
}

// become sets the calling thread's supplementary groups, fsgid and fsuid.
func become(c wire.Cred) error {
	var p unsafe.Pointer
	if len(c.Groups) > 0 {
		p = unsafe.Pointer(&c.Groups[0]) // []uint32 is the kernel's gid_t array
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(c.Groups)), uintptr(p), 0); e != 0 {
		return fmt.Errorf("creds: setgroups %v: %w", c.Groups, e)
	}
	// setfsgid/setfsuid return the previous value and no error: a second
	// call reports whether the first took effect.
	unix.RawSyscall(unix.SYS_SETFSGID, uintptr(c.GID), 0, 0)
	if got, _, _ := unix.RawSyscall(unix.SYS_SETFSGID, uintptr(c.GID), 0, 0); uint32(got) != c.GID {
		return fmt.Errorf("creds: setfsgid %d: still %d", c.GID, got)
	}
	unix.RawSyscall(unix.SYS_SETFSUID, uintptr(c.UID), 0, 0)
	if got, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, uintptr(c.UID), 0, 0); uint32(got) != c.UID {
		return fmt.Errorf("creds: setfsuid %d: still %d", c.UID, got)
	}
	return nil
}
