package link

import (
	"crypto/tls"
	"encoding/binary"
	"net"
	"sync"
	"time"
)

// batchMax bounds how many bytes of TLS records collect before they are
// written out even in the middle of a frame, and how many may wait for
// the writer before the next frame's writer waits too.
const batchMax = 1 << 20

// batchBufs recycles batch buffers: a session holds one only while it has
// bytes waiting, so a thousand idle sessions hold none.
var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// closeFlush bounds how long Close waits for the last bytes to reach a
// peer that stopped reading.
const closeFlush = time.Second

// batchConn is the TCP connection under TLS: it decides how the records
// TLS produces reach the kernel, in as few writes as it can without
// delaying a message.
//
//   - Within a frame (between begin and end) crypto/tls makes a frame of
//     up to a stream window (4 MiB) into 16 KiB records; they collect
//     until the frame ends, or batchMax have collected.
//   - A frame with a body (a message: an exec header, a status, output)
//     goes out when it ends, in the caller's own write, together with
//     whatever queued before it.
//   - A frame without one (a stream's open, ack or close, a window
//     update) is queued, and a writer goroutine (one per connection,
//     started by the first Write) writes what has queued once the caller
//     is between frames. A job's exec touches a node's session with a
//     dozen small frames, most of them control frames issued back to back
//     by different streams; batched, they cost the two ends a few writes
//     and wake-ups instead of a dozen.
//
// A write error is returned by every Write after it (the session then
// ends, as it would have). Queued bytes stay under about 2×batchMax: a
// caller waits while the writer is busy with a full batch
// (back-pressure). Only the framing of bytes into system calls changes:
// the record stream is exactly what TLS produced.
type batchConn struct {
	net.Conn
	mu      sync.Mutex
	cond    sync.Cond // the writer took a batch, finished one, or failed
	pending *[]byte   // queued bytes, nil when none
	inFrame bool      // a frame is being written: hold its records
	writing bool      // the writer is in a system call
	running bool      // the writer goroutine exists
	closed  bool
	err     error // the first write error
}

func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{Conn: c}
	b.cond.L = &b.mu
	return b
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && b.pending != nil && len(*b.pending) >= batchMax && b.writing {
		b.cond.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.closed {
		return 0, net.ErrClosed
	}
	if b.pending == nil {
		b.pending = batchBufs.Get().(*[]byte)
	}
	*b.pending = append(*b.pending, p...)
	if !b.running {
		b.running = true
		go b.writer()
	}
	b.cond.Broadcast()
	return len(p), nil
}

// ready reports whether the writer should take the queued bytes; b.mu is
// held.
func (b *batchConn) ready() bool {
	if !b.queued() {
		return false
	}
	return !b.inFrame || b.closed || len(*b.pending) >= batchMax
}

// writer hands queued bytes to the kernel until the connection closes.
func (b *batchConn) writer() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for b.err == nil && (b.writing || !b.ready()) && !(b.closed && !b.queued()) {
			b.cond.Wait()
		}
		if b.err != nil || !b.ready() { // failed, or closed with nothing left
			b.running = false
			b.cond.Broadcast()
			return
		}
		b.flushLocked()
	}
}

// queued reports whether bytes wait to be written; b.mu is held.
func (b *batchConn) queued() bool { return b.pending != nil && len(*b.pending) > 0 }

func (b *batchConn) begin() {
	b.mu.Lock()
	b.inFrame = true
	b.mu.Unlock()
}

// end ends a frame. A frame with a body (a message: an exec header, a
// status, output) goes out now, with whatever queued before it, unless a
// write is already in the kernel; a frame without one (a window update,
// a stream's open, ack or close) waits for the writer, so the control
// frames of a burst share a write with each other or with the next
// message.
func (b *batchConn) end(now bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inFrame = false
	if !now || b.writing || !b.ready() || b.err != nil {
		b.cond.Broadcast()
		return b.err
	}
	b.flushLocked()
	return b.err
}

// flushLocked writes the queued bytes, then parts, in the caller, in one
// writev; b.mu is held and released during the write. It reports how
// many bytes of parts were written.
func (b *batchConn) flushLocked(parts ...[]byte) (int, error) {
	buf := b.pending
	b.pending = nil
	b.writing = true
	b.mu.Unlock()
	var bufs net.Buffers
	queued := 0
	if buf != nil {
		queued = len(*buf)
		bufs = append(bufs, *buf)
	}
	bufs = append(bufs, parts...)
	n, err := bufs.WriteTo(b.Conn)
	b.mu.Lock()
	b.writing = false
	if buf != nil && cap(*buf) <= 2*batchMax {
		*buf = (*buf)[:0]
		batchBufs.Put(buf)
	}
	if err != nil && b.err == nil {
		b.err = err
		b.pending = nil
	}
	b.cond.Broadcast()
	return max(int(n)-queued, 0), err
}

// Close writes what is queued (for at most closeFlush) and closes the
// connection.
func (b *batchConn) Close() error {
	b.mu.Lock()
	b.closed = true
	b.cond.Broadcast()
	t := time.AfterFunc(closeFlush, func() { b.Conn.SetWriteDeadline(time.Now()) })
	for b.running && b.err == nil {
		b.cond.Wait()
	}
	b.mu.Unlock()
	t.Stop()
	return b.Conn.Close()
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
	body := t.open
	if !body {
		t.raw.begin()
	}
	n, err := t.Conn.Write(p)
	if t.open = err == nil && bodyFollows(p); t.open {
		return n, nil
	}
	if ferr := t.raw.end(body); err == nil && ferr != nil {
		return 0, ferr
	}
	return n, err
}

// Coalesce wraps a plain (unencrypted) connection that carries a yamux
// session, such as a client's unix socket to the master. A data frame's
// header waits for its body and both go out in one writev, together with
// the control frames (stream opens, acks, closes, window updates) queued
// before them; control frames with no message behind them go out from a
// writer goroutine, together when several queued while it was busy. A
// `bpsh -a` opens three streams per node back to back: batched, the
// master reads them in a few reads instead of hundreds. A body is never
// copied: its writev happens before Write returns. Only yamux's writer
// goroutine may call Write.
func Coalesce(c net.Conn) net.Conn { return &coalesced{batchConn: newBatchConn(c)} }

type coalesced struct {
	*batchConn
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
		return c.batchConn.Write(p)
	}
	c.held = false
	return c.writeNow(c.hdr[:], p)
}

// writeNow writes the queued bytes, hdr and body in one writev before it
// returns, and reports how much of body was written.
func (b *batchConn) writeNow(hdr, body []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.writing && b.err == nil {
		b.cond.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.flushLocked(hdr, body)
	return max(n-len(hdr), 0), err
}
