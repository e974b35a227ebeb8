package job

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// catchChild is the child side of TestCatchBeforeStart: it catches, is
// sent sig, and (once sig is caught) releases the signals without running a job.
func catchChild(sig syscall.Signal) {
	c := Catch()
	<-c.ready // the signal is caught, not defaulted by the kernel
	syscall.Kill(os.Getpid(), sig)
	// Every case's signal reaches the Catcher (one ignored at the start
	// is caught too, once notified): wait for it, bounded.
	for deadline := time.Now().Add(10 * time.Second); len(c.ch) == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	c.Release()
	fmt.Println("went on")
	os.Exit(0)
}

// TestCatchBeforeStart: a signal caught before the job starts takes the
// action it would have had uncaught in this Go program: it ends the
// process (SIGTERM, SIGINT), does nothing to it (SIGCONT; SIGUSR1, which
// the Go runtime takes and drops), or nothing if the process was started
// with it ignored (SIGHUP under nohup).
func TestCatchBeforeStart(t *testing.T) {
	if s := os.Getenv("BEO_JOB_CATCH_CHILD"); s != "" {
		var n int
		fmt.Sscan(s, &n)
		catchChild(syscall.Signal(n))
	}
	for _, tc := range []struct {
		name    string
		sig     syscall.Signal
		ignored bool
		killed  bool
	}{
		{"SIGTERM ends it", syscall.SIGTERM, false, true},
		{"SIGINT ends it", syscall.SIGINT, false, true},
		{"SIGUSR1 does nothing", syscall.SIGUSR1, false, false},
		{"SIGCONT does nothing", syscall.SIGCONT, false, false},
		{"SIGHUP ignored at start stays ignored", syscall.SIGHUP, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestCatchBeforeStart$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("BEO_JOB_CATCH_CHILD=%d", int(tc.sig)))
			if tc.ignored { // the child inherits SIG_IGN across exec
				signal.Ignore(tc.sig)
				defer signal.Reset(tc.sig)
			}
			out, err := cmd.Output()
			var ee *exec.ExitError
			switch {
			case tc.killed:
				ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
				if !errors.As(err, &ee) || !ws.Signaled() || ws.Signal() != tc.sig {
					t.Errorf("child: %v, output %q; want killed by %v", err, out, tc.sig)
				}
			case err != nil || !strings.Contains(string(out), "went on"):
				t.Errorf("child: %v, output %q; want it to go on", err, out)
			}
		})
	}
}

// TestStopBeforeStart: SIGTSTP caught before the job starts stops the
// process (Ctrl-Z), and SIGCONT (fg) lets it go on.
func TestStopBeforeStart(t *testing.T) {
	if s := os.Getenv("BEO_JOB_CATCH_CHILD"); s != "" {
		var n int
		fmt.Sscan(s, &n)
		catchChild(syscall.Signal(n))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestStopBeforeStart$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("BEO_JOB_CATCH_CHILD=%d", int(syscall.SIGTSTP)))
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan bool, 1)
	go func() {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(cmd.Process.Pid, &ws, syscall.WUNTRACED, nil)
		stopped <- err == nil && ws.Stopped()
	}()
	select {
	case ok := <-stopped:
		if !ok {
			t.Fatalf("the child ended instead of stopping (output %q)", out.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("SIGTSTP did not stop the child")
	}
	cmd.Process.Signal(syscall.SIGCONT)
	if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "went on") {
		t.Errorf("after SIGCONT: %v, output %q", err, out.String())
	}
}
