package ghost

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reg is the process's ghosts by pid, for the SIGCHLD watcher: stops
// are reported to the parent process, whichever Spawner started the
// ghost (see the package doc).
var reg = registry{ghosts: map[int]*Ghost{}}

type registry struct {
	mu       sync.Mutex
	ghosts   map[int]*Ghost
	watching bool
}

// add records g; reg.mu is held.
func (r *registry) add(g *Ghost) {
	r.ghosts[g.Pid] = g
	if !r.watching {
		r.watching = true
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGCHLD)
		go r.watch(ch)
	}
}

func (r *registry) remove(pid int) {
	r.mu.Lock()
	delete(r.ghosts, pid)
	r.mu.Unlock()
}

// watch routes stop reports to their ghosts on every SIGCHLD. It runs
// for the life of the process once a ghost was started.
func (r *registry) watch(ch <-chan os.Signal) {
	for range ch {
		for {
			pid, err := waitStopped()
			if err != nil || pid == 0 {
				break
			}
			r.mu.Lock()
			g := r.ghosts[pid]
			r.mu.Unlock()
			if g != nil {
				g.stopped()
			}
		}
	}
}

// waitStopped collects one stop report of any child, without touching
// exits: waitid(P_ALL, 0, WSTOPPED|WNOHANG). 0 when there is none.
func waitStopped() (int, error) {
	var si unix.Siginfo
	for {
		err := unix.Waitid(unix.P_ALL, 0, &si, unix.WSTOPPED|unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		// si_pid follows si_signo, si_errno, si_code and padding.
		return int(*(*int32)(unsafe.Add(unsafe.Pointer(&si), 16))), nil
	}
}
