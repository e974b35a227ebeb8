package beorsh

import (
	"os"
	"testing"
	"time"
)

// TestDrain: beorsh's last message waits in its stderr pipe until the
// launcher reads it (hydra drops what it has not read when it ends);
// a pipe nobody reads costs at most the bound, anything else nothing.
func TestDrain(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	w.Write([]byte("beorsh: bogus: not a node of this cluster\n"))
	done := make(chan struct{})
	go func() { drain(w, 5*time.Second); close(done) }()
	select {
	case <-done:
		t.Fatal("drain returned with the message unread")
	case <-time.After(100 * time.Millisecond):
	}
	buf := make([]byte, 100)
	r.Read(buf)
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("drain did not return once the message was read")
	}

	w.Write([]byte("unread"))
	start := time.Now()
	drain(w, 200*time.Millisecond)
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("an unread pipe: drain took %v, want its bound (200ms)", d)
	}
	f, err := os.CreateTemp(t.TempDir(), "err")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start = time.Now()
	drain(f, 5*time.Second)
	if d := time.Since(start); d > time.Second {
		t.Errorf("a file: drain took %v, want at once", d)
	}
}
