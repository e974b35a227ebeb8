package slave

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// TestExitsOnly: the connector socket brings processes' exits and
// nothing else — not the forks and execs of the same processes — and
// each exit of the processes started here arrives with its status.
func TestExitsOnly(t *testing.T) {
	sock, err := subscribeExits()
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		t.Skip("the process connector needs root:", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	if err := sock.SetReceiveTimeout(&unix.Timeval{Usec: 200_000}); err != nil {
		t.Fatal(err)
	}
	// Read while the processes run: the host's other processes exit too.
	type exit struct{ pid, status int }
	exits := make(chan exit, 1024)
	bad := make(chan string, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		order := nl.NativeEndian()
		for {
			select {
			case <-done:
				return
			default:
			}
			msgs, _, err := sock.Receive()
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOBUFS) {
				continue
			}
			if err != nil {
				bad <- err.Error()
				return
			}
			for _, m := range msgs {
				var (
					cm nl.CnMsg
					h  netlink.ProcEventHeader
				)
				r := bytes.NewReader(m.Data)
				if binary.Read(r, order, &cm) != nil || binary.Read(r, order, &h) != nil {
					bad <- fmt.Sprintf("a message too short for a process event: %x", m.Data)
					return
				}
				x, ok := exitOf(m)
				switch {
				case !ok:
					bad <- fmt.Sprintf("event %#x came through; only exits should", h.What)
					return
				case x.ProcessPid != x.ProcessTgid:
					bad <- fmt.Sprintf("a thread's exit came through (pid %d of %d)", x.ProcessPid, x.ProcessTgid)
					return
				}
				exits <- exit{int(x.ProcessTgid), int(x.ExitCode)}
			}
		}
	}()
	want := map[int]int{} // pid → exit code
	for i := range 20 {
		cmd := exec.Command("/bin/sh", "-c", "/bin/true; exit $0", strconv.Itoa(i%10))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		want[cmd.Process.Pid] = i % 10
		cmd.Wait()
	}
	deadline := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case msg := <-bad:
			t.Fatal(msg)
		case x := <-exits:
			if code, ok := want[x.pid]; ok {
				if ws := unix.WaitStatus(x.status); !ws.Exited() || ws.ExitStatus() != code {
					t.Errorf("pid %d: status %#x, want exit %d", x.pid, x.status, code)
				}
				delete(want, x.pid)
			}
		case <-deadline:
			t.Fatalf("no exit seen for %d of 20 processes: %v", len(want), want)
		}
	}
}
