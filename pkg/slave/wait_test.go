package slave

import (
	"os"
	"syscall"
	"testing"
)

func TestReap(t *testing.T) {
	for _, c := range []struct {
		name   string
		script string
		status int
		signal syscall.Signal
	}{
		{"exit", "exit 3", 3, 0},
		{"signal", "kill -TERM $$", 0, syscall.SIGTERM},
		{"slow", "sleep 0.2; exit 0", 0, 0}, // not exited at the first look: parked on the pidfd
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", c.script}, &os.ProcAttr{})
			if err != nil {
				t.Fatal(err)
			}
			ws, ru, err := reap(p)
			if err != nil {
				t.Fatal(err)
			}
			if ru == nil || ru.Maxrss <= 0 {
				t.Errorf("rusage %+v: want the process's peak resident set", ru)
			}
			if c.signal != 0 {
				if !ws.Signaled() || ws.Signal() != c.signal {
					t.Fatalf("status %#x, want killed by %v", ws, c.signal)
				}
				return
			}
			if !ws.Exited() || ws.ExitStatus() != c.status {
				t.Fatalf("status %#x, want exit %d", ws, c.status)
			}
			// Reaped: the pid is gone from this process's children.
			if _, err := syscall.Wait4(p.Pid, nil, syscall.WNOHANG, nil); err != syscall.ECHILD {
				t.Fatalf("wait4 after reap: %v, want ECHILD", err)
			}
		})
	}
}
