package master

import (
	"context"
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

// TestMoveSlots: at most maxMoves moves or forks at once; the next one
// waits for a turn, and gives up when its time is up.
func TestMoveSlots(t *testing.T) {
	m := &Master{moveSlots: make(chan struct{}, maxMoves)}
	var done []func()
	for range maxMoves {
		d, err := m.moveSlot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := m.moveSlot(ctx); err == nil {
		t.Fatalf("move %d got a turn with %d in flight", maxMoves+1, maxMoves)
	}
	got := make(chan error, 1)
	go func() {
		d, err := m.moveSlot(context.Background())
		if err == nil {
			d()
		}
		got <- err
	}()
	done[0]()
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("after one ended: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("a move waiting for a turn did not get the one freed")
	}
}
