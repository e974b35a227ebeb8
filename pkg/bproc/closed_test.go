package bproc

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestWaitClosed: a move waits until its client socket is really gone
// from the process before it stops for the checkpoint.
func TestWaitClosed(t *testing.T) {
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conn, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ino := socketInode(conn)
	if ino == 0 {
		t.Fatal("no inode for a unix socket")
	}
	start := time.Now()
	waitClosed(ino, 200*time.Millisecond)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("returned after %v with the socket open; want the whole limit", d)
	}
	go func() { time.Sleep(50 * time.Millisecond); conn.Close() }()
	start = time.Now()
	waitClosed(ino, 5*time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("returned %v after a close 50 ms in", d)
	}
}
