package master

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestProcStat: the open stat file follows its process through a stop
// and a continue, and reads as not stopped once the process is gone.
func TestProcStat(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	st, err := openStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	until := func(what string, want bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for st.stopped() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: stopped() is still %v", what, !want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if st.stopped() {
		t.Fatal("a running process reads as stopped")
	}
	cmd.Process.Signal(syscall.SIGSTOP)
	until("after SIGSTOP", true)
	cmd.Process.Signal(syscall.SIGCONT)
	until("after SIGCONT", false)
	cmd.Process.Signal(syscall.SIGSTOP)
	until("after a second SIGSTOP", true)
	cmd.Process.Kill()
	cmd.Wait()
	if st.stopped() {
		t.Error("a process that is gone reads as stopped")
	}
	var none *procStat // the client was gone before the follower started
	if none.stopped() || none.Close() != nil {
		t.Error("a nil procStat must read as running and close quietly")
	}
}
