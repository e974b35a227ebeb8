package ghost

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// reap reaps p as p.Wait does, but parks the waiting goroutine in the
// runtime's netpoller on a pidfd instead of holding an OS thread in a
// blocking waitid(2) for the ghost's whole life: a thousand ghosts would
// be a thousand threads. (pkg/slave reaps its jobs the same way.)
func reap(p *os.Process) (syscall.WaitStatus, error) {
	fd, err := unix.PidfdOpen(p.Pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return waitBlocking(p)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return waitBlocking(p)
	}
	var ws syscall.WaitStatus
	var werr error
	reaped := false
	err = rc.Read(func(uintptr) bool {
		var wpid int
		for {
			wpid, werr = syscall.Wait4(p.Pid, &ws, syscall.WNOHANG, nil)
			if !errors.Is(werr, syscall.EINTR) {
				break
			}
		}
		reaped = werr == nil && wpid == p.Pid
		return werr != nil || reaped
	})
	if err != nil && !reaped && werr == nil {
		return waitBlocking(p)
	}
	p.Release()
	return ws, werr
}

func waitBlocking(p *os.Process) (syscall.WaitStatus, error) {
	state, err := p.Wait()
	if err != nil {
		return 0, err
	}
	return state.Sys().(syscall.WaitStatus), nil
}
