package master

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestSwitchWriter: the client's stdin during a move — held writes wait
// (nothing goes to the old node after the checkpoint), then land in the
// next node's stream; a stdin that ended meanwhile ends the next one.
func TestSwitchWriter(t *testing.T) {
	oldA, oldB := net.Pipe()
	newA, newB := net.Pipe()
	defer oldB.Close()
	defer newB.Close()
	sw := &switchWriter{w: oldA}
	go func() { sw.Write([]byte("before")) }()
	buf := make([]byte, 16)
	n, _ := oldB.Read(buf)
	if string(buf[:n]) != "before" {
		t.Fatalf("old stream got %q", buf[:n])
	}
	sw.hold()
	wrote := make(chan struct{})
	go func() {
		sw.Write([]byte("after"))
		close(wrote)
	}()
	select {
	case <-wrote:
		t.Fatal("a write went through while held")
	case <-time.After(50 * time.Millisecond):
	}
	sw.swap(newA)
	sw.release()
	n, _ = newB.Read(buf)
	if string(buf[:n]) != "after" {
		t.Fatalf("new stream got %q", buf[:n])
	}
	<-wrote
	go sw.Close()
	if _, err := newB.Read(buf); err != io.EOF {
		t.Errorf("after Close the new stream reads %v, want EOF", err)
	}
}
