package link

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// countConn counts the writes that reach the connection.
type countConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// pair returns two ends of a yamux session made by make on a TCP (or
// unix) connection, the dialing side's raw connection counted.
func pair(t *testing.T, network string, wrap func(server bool, c net.Conn) (*yamux.Session, error)) (client, server *yamux.Session, count *countConn) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = t.TempDir() + "/s"
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := make(chan *yamux.Session, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srv <- nil
			return
		}
		s, err := wrap(true, c)
		if err != nil {
			c.Close()
		}
		srv <- s
	}()
	c, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	count = &countConn{Conn: c}
	client, err = wrap(false, count)
	if err != nil {
		t.Fatal(err)
	}
	server = <-srv
	if server == nil {
		t.Fatal("server side failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server, count
}

// exchange sends payloads on concurrent streams from client to server and
// checks every byte arrives, in order, on its own stream.
func exchange(t *testing.T, client, server *yamux.Session, payloads [][]byte) {
	t.Helper()
	got := make(chan [2][32]byte, len(payloads))
	go func() {
		for range payloads {
			st, err := server.AcceptStream()
			if err != nil {
				return
			}
			go func() {
				defer st.Close()
				var idx [1]byte
				io.ReadFull(st, idx[:])
				b, _ := io.ReadAll(st)
				got <- [2][32]byte{sha256.Sum256(payloads[idx[0]]), sha256.Sum256(b)}
			}()
		}
	}()
	var wg sync.WaitGroup
	for i, p := range payloads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := client.OpenStream()
			if err != nil {
				t.Error(err)
				return
			}
			st.Write([]byte{byte(i)})
			for b := p; len(b) > 0; {
				n := min(len(b), 1+len(b)/3) // uneven writes
				if _, err := st.Write(b[:n]); err != nil {
					t.Error(err)
					return
				}
				b = b[n:]
			}
			st.Close()
		}()
	}
	wg.Wait()
	deadline := time.After(20 * time.Second)
	for range payloads {
		select {
		case g := <-got:
			if g[0] != g[1] {
				t.Fatal("a stream's bytes arrived changed")
			}
		case <-deadline:
			t.Fatal("streams did not all arrive")
		}
	}
}

func payloads() [][]byte {
	var ps [][]byte
	for _, n := range []int{0, 1, 11, 12, 13, 4096, 100_000, 3 << 20, 9 << 20} {
		b := make([]byte, n)
		rand.Read(b)
		ps = append(ps, b)
	}
	return ps
}

func TestBatchedTLS(t *testing.T) {
	dir := t.TempDir()
	mk, err := EnsureMasterKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	nk, err := NodeKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, server, count := pair(t, "tcp", func(srv bool, c net.Conn) (*yamux.Session, error) {
		if srv {
			return Accept(ctx, c, mk, nil)
		}
		return dialConn(ctx, c, nk)
	})
	exchange(t, client, server, payloads())

	// One frame of 200 KiB (within a new stream's first window, so yamux
	// sends it whole): TLS makes 13 records of it; they and the frame's
	// header reach the connection in one write.
	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	acc, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 1)
	st.Write(first) // the stream's opening frame
	io.ReadFull(acc, first)
	big := bytes.Repeat([]byte("x"), 200<<10)
	before := count.writes.Load()
	if _, err := st.Write(big); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(acc, make([]byte, len(big))); err != nil {
		t.Fatal(err)
	}
	if got := count.writes.Load() - before; got != 1 {
		t.Errorf("a 200 KiB frame took %d writes, want 1", got)
	}
}

func TestCoalesce(t *testing.T) {
	client, server, _ := pair(t, "unix", func(srv bool, c net.Conn) (*yamux.Session, error) {
		if srv {
			return yamux.Server(Coalesce(c), MuxConfig())
		}
		return yamux.Client(Coalesce(c), MuxConfig())
	})
	exchange(t, client, server, payloads())
}

// recConn records the writes that reach it.
type recConn struct {
	net.Conn
	writes [][]byte
}

func (r *recConn) Write(p []byte) (int, error) {
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

func TestCoalesceHoldsHeaders(t *testing.T) {
	hdr := func(typ byte, length uint32) []byte {
		return []byte{0, typ, 0, 0, 0, 0, 0, 7, byte(length >> 24), byte(length >> 16), byte(length >> 8), byte(length)}
	}
	rec := &recConn{}
	c := Coalesce(rec)
	steps := []struct {
		write []byte
		want  int // writes reached rec so far
	}{
		{hdr(0, 5), 0},           // a data header waits for its body
		{[]byte("hello"), 2},     // then both go (two Writes here: recConn has no writev)
		{hdr(1, 0), 3},           // a window update has no body: at once
		{hdr(0, 0), 4},           // an empty data frame (a FIN) too
		{hdr(0, 3), 4},           // held again
		{[]byte("abc"), 6},       //
		{[]byte("raw bytes"), 7}, // not a header: straight through
	}
	for i, s := range steps {
		n, err := c.Write(s.write)
		if err != nil || n != len(s.write) {
			t.Fatalf("step %d: wrote %d, %v", i, n, err)
		}
		if len(rec.writes) != s.want {
			t.Fatalf("step %d: %d writes reached the connection, want %d", i, len(rec.writes), s.want)
		}
	}
	if got := string(bytes.Join(rec.writes, nil)); got != string(bytes.Join([][]byte{hdr(0, 5), []byte("hello"), hdr(1, 0), hdr(0, 0), hdr(0, 3), []byte("abc"), []byte("raw bytes")}, nil)) {
		t.Errorf("bytes reordered or changed: %q", got)
	}
}
