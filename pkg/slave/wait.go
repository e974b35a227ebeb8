package slave

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// reap reaps p as p.Wait does, but parks the waiting goroutine in the
// runtime's netpoller on a pidfd (readable once the process has exited)
// instead of in a blocking waitid(2). A blocking wait holds an OS thread
// for the process's whole life, and while it does the runtime's sysmon
// thread keeps taking the processor back every 20 µs: on a node running
// many short jobs that is thousands of wake-ups per second for nothing.
// Kernels without PIDFD_NONBLOCK (before 5.10) get p.Wait. The rusage
// is the process's and that of the children it waited for (wait4(2)):
// the job's accounting where it has no cgroup (usage.go).
func reap(p *os.Process) (syscall.WaitStatus, *syscall.Rusage, error) {
	fd, err := unix.PidfdOpen(p.Pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return waitBlocking(p)
	}
	f := os.NewFile(uintptr(fd), "pidfd") // non-blocking: registered with the poller
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return waitBlocking(p)
	}
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	var werr error
	reaped := false
	err = rc.Read(func(uintptr) bool {
		var wpid int
		for {
			wpid, werr = syscall.Wait4(p.Pid, &ws, syscall.WNOHANG, &ru)
			if !errors.Is(werr, syscall.EINTR) {
				break
			}
		}
		reaped = werr == nil && wpid == p.Pid
		return werr != nil || reaped // else: not yet, wait for the pidfd
	})
	if err != nil && !reaped && werr == nil {
		return waitBlocking(p) // the pidfd could not be polled
	}
	p.Release()
	if werr != nil {
		return ws, nil, werr
	}
	return ws, &ru, nil
}

func waitBlocking(p *os.Process) (syscall.WaitStatus, *syscall.Rusage, error) {
	state, err := p.Wait()
	if err != nil {
		return 0, nil, err
	}
	ru, _ := state.SysUsage().(*syscall.Rusage)
	return state.Sys().(syscall.WaitStatus), ru, nil
}
