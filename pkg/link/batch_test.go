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
			s, _, err := Accept(ctx, c, mk, nil)
			return s, err
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
	mu     sync.Mutex
	writes [][]byte
}

func (r *recConn) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

func (r *recConn) Close() error { return nil }

// got is everything written so far, in order.
func (r *recConn) got() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(bytes.Join(r.writes, nil))
}

func TestCoalesceHoldsHeaders(t *testing.T) {
	hdr := func(typ byte, length uint32) []byte {
		return []byte{0, typ, 0, 0, 0, 0, 0, 7, byte(length >> 24), byte(length >> 16), byte(length >> 8), byte(length)}
	}
	rec := &recConn{}
	c := Coalesce(rec)
	var sent []byte
	steps := []struct {
		write   []byte
		written bool // everything so far must have reached rec when Write returns
	}{
		{hdr(0, 5), false},           // a data header waits for its body
		{[]byte("hello"), true},      // then both go, before Write returns
		{hdr(1, 0), false},           // a window update has no body: queued for the writer
		{hdr(0, 0), false},           // an empty data frame (a FIN) too
		{hdr(0, 3), false},           // held again
		{[]byte("abc"), true},        // the queued control frames go with it
		{[]byte("raw bytes"), false}, // not a header: queued
	}
	for i, s := range steps {
		n, err := c.Write(s.write)
		if err != nil || n != len(s.write) {
			t.Fatalf("step %d: wrote %d, %v", i, n, err)
		}
		sent = append(sent, s.write...)
		if s.written && rec.got() != string(sent) {
			t.Fatalf("step %d: %q reached the connection, want %q", i, rec.got(), sent)
		}
	}
	c.Close() // writes what is queued
	if rec.got() != string(sent) {
		t.Errorf("bytes reordered, changed or lost: %q", rec.got())
	}
}

// TestBatchQueuedControlFrames: control frames written back to back while
// the writer is busy reach the connection in fewer writes than frames,
// and a message (a data frame) takes the queue with it.
func TestBatchQueuedControlFrames(t *testing.T) {
	gate := make(chan struct{})
	rec := &slowConn{recConn: &recConn{}, gate: gate}
	c := Coalesce(rec)
	ctl := []byte{0, 1, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0}
	c.Write(ctl) // the writer takes it and blocks in the connection
	for range 10 {
		c.Write(ctl) // queue behind it
	}
	close(gate)
	if _, err := c.Write([]byte{0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	n := len(rec.writes)
	rec.mu.Unlock()
	// One write for what the writer took while blocked, one for what queued
	// behind it, and the message's writev (three calls here: recConn has no
	// writev) — unbatched, the 11 control frames alone would be 11.
	if n > 5 {
		t.Errorf("11 control frames and a message took %d writes, want at most 5", n)
	}
	if want := 11*len(ctl) + 14; len(rec.got()) != want {
		t.Errorf("%d bytes written, want %d", len(rec.got()), want)
	}
}

// slowConn blocks every write until gate closes.
type slowConn struct {
	*recConn
	gate chan struct{}
}

func (s *slowConn) Write(p []byte) (int, error) {
	<-s.gate
	return s.recConn.Write(p)
}
