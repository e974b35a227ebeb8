package link

import (
	"crypto/tls"
	"encoding/binary"
	"net"
	"sync"
)

// batchMax bounds how many bytes of TLS records collect before they are
// written out even in the middle of a frame.
const batchMax = 1 << 20

// batchBufs recycles batch buffers: a session holds one only while it
// writes a frame, so a thousand idle sessions hold none.
var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// batchConn is the TCP connection under TLS. crypto/tls makes a frame of
// up to a stream window (4 MiB) into 16 KiB records and writes each with
// its own system call, and each wakes the reader; while a frame is being
// written (between begin and end) the records collect here and reach the
// kernel in writes of up to batchMax. Outside a frame — the handshake,
// alerts, anything TLS writes on its own — writes go straight through.
// Only the framing of bytes into system calls changes: the record stream
// is exactly what TLS produced.
type batchConn struct {
	net.Conn
	mu  sync.Mutex
	on  bool
	buf *[]byte
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.on {
		return b.Conn.Write(p)
	}
	*b.buf = append(*b.buf, p...)
	if len(*b.buf) >= batchMax {
		if err := b.flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (b *batchConn) begin() {
	b.mu.Lock()
	b.on = true
	b.buf = batchBufs.Get().(*[]byte)
	b.mu.Unlock()
}

// end writes what collected and stops batching.
func (b *batchConn) end() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.flush()
	b.on = false
	if cap(*b.buf) <= 2*batchMax {
		batchBufs.Put(b.buf)
	}
	b.buf = nil
	return err
}

// flush writes the collected records; b.mu is held.
func (b *batchConn) flush() error {
	if len(*b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(*b.buf)
	*b.buf = (*b.buf)[:0]
	return err
}

// yamux frames (see its spec.md): a 12-byte header — version 0, type,
// flags, stream id, length — and, for a data frame (type 0), length bytes
// of body, which yamux's writer always writes next, in its own Write.
const (
	muxHeaderSize = 12
	muxTypeData   = 0
)

// bodyFollows reports whether p is a yamux data-frame header whose body
// is the next Write.
func bodyFollows(p []byte) bool {
	return len(p) == muxHeaderSize && p[0] == 0 && p[1] == muxTypeData &&
		binary.BigEndian.Uint32(p[8:12]) > 0
}

// batchedTLS is the TLS connection yamux writes its frames to: a frame's
// header and body (and the body's records) go out in one system call.
// Only yamux's writer goroutine calls Write.
type batchedTLS struct {
	*tls.Conn
	raw  *batchConn
	open bool // a header is batched, its body comes next
}

func (t *batchedTLS) Write(p []byte) (int, error) {
	if !t.open {
		t.raw.begin()
	}
	n, err := t.Conn.Write(p)
	if t.open = err == nil && bodyFollows(p); t.open {
		return n, nil
	}
	if ferr := t.raw.end(); err == nil && ferr != nil {
		return 0, ferr
	}
	return n, err
}

// Coalesce wraps a plain (unencrypted) connection that carries a yamux
// session, such as a client's unix socket to the master: a data frame's
// header waits for its body and both go out in one writev instead of two
// writes, which halves the system calls of small messages and spares the
// reader a wake-up between the two. Only yamux's writer goroutine may
// call Write.
func Coalesce(c net.Conn) net.Conn { return &coalesced{Conn: c} }

type coalesced struct {
	net.Conn
	hdr  [muxHeaderSize]byte
	held bool
}

func (c *coalesced) Write(p []byte) (int, error) {
	if !c.held && bodyFollows(p) {
		copy(c.hdr[:], p)
		c.held = true
		return len(p), nil
	}
	if !c.held {
		return c.Conn.Write(p)
	}
	c.held = false
	bufs := net.Buffers{c.hdr[:], p}
	n, err := bufs.WriteTo(c.Conn)
	return max(int(n)-muxHeaderSize, 0), err
}
