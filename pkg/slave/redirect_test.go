package slave

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestOpenRedirectFifo: -I/-O/-E onto a fifo never wait for its other
// end (a blocked open held a slave thread for ever): stdin from a fifo
// without a writer opens, stdout to one without a reader is an error.
func TestOpenRedirectFifo(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "f")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() {
		f, err := openRedirect(fifo, os.O_RDONLY)
		if err == nil {
			f.Close()
		}
		done <- err
		_, err = create(fifo)
		done <- err
	}()
	for i, want := range []string{"", "no process is reading"} {
		select {
		case err := <-done:
			if (want == "" && err != nil) || (want != "" && (err == nil || !strings.Contains(err.Error(), want))) {
				t.Errorf("open %d: got %v, want %q", i, err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("open %d of a fifo waited for its other end", i)
		}
	}
}
