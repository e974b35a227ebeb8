package accept

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// stallPair returns a server-side connection through Stall(d) and its
// client.
func stallPair(t *testing.T, d time.Duration) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sl := Stall(PerAddr(ln, 4, nil, "test"), d)
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = sl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func bigFile(t *testing.T, size int) (string, []byte) {
	t.Helper()
	b := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	p := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// TestStallStoppedReader: a peer that never reads fails the writer's
// Write and ReadFrom (a file, as net/http sends one) within a few
// deadlines, instead of blocking it for ever.
func TestStallStoppedReader(t *testing.T) {
	path, body := bigFile(t, 64<<20)
	for _, how := range []string{"Write", "ReadFrom"} {
		server, _ := stallPair(t, 200*time.Millisecond)
		done := make(chan error, 1)
		go func() {
			if how == "Write" {
				_, err := server.Write(body)
				done <- err
				return
			}
			f, err := os.Open(path)
			if err != nil {
				done <- err
				return
			}
			defer f.Close()
			_, err = io.CopyN(server, f, int64(len(body)))
			done <- err
		}()
		select {
		case err := <-done:
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				t.Errorf("%s to a peer that does not read: %v, want a timeout", how, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s to a peer that does not read still blocked after 20 s", how)
		}
	}
}

// TestStallReader: a peer that reads gets every byte, through both
// paths, and a limited reader's count is kept as io.CopyN needs it.
func TestStallReader(t *testing.T) {
	path, body := bigFile(t, 5<<20+123*16)
	want := sha256.Sum256(body)
	for _, how := range []string{"Write", "ReadFrom"} {
		server, client := stallPair(t, 2*time.Second)
		got := make(chan [32]byte, 1)
		go func() {
			h := sha256.New()
			io.Copy(h, client)
			var s [32]byte
			copy(s[:], h.Sum(nil))
			got <- s
		}()
		var err error
		if how == "Write" {
			_, err = server.Write(body)
		} else {
			f, ferr := os.Open(path)
			if ferr != nil {
				t.Fatal(ferr)
			}
			lr := &io.LimitedReader{R: f, N: int64(len(body)) + 10}
			var n int64
			n, err = server.(io.ReaderFrom).ReadFrom(lr)
			f.Close()
			if n != int64(len(body)) || lr.N != 10 {
				t.Errorf("ReadFrom: %d bytes, %d left of the limit; want %d, 10", n, lr.N, len(body))
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		server.Close()
		select {
		case s := <-got:
			if s != want {
				t.Errorf("%s: the reader got other bytes", how)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: the reader did not finish", how)
		}
	}
}
