package accept

import (
	"io"
	"net"
	"time"
)

// Stall returns ln with connections whose writes fail once they have
// made no progress for d: each MiB written gets d to go out. A peer
// that asks for a file and never reads it otherwise holds the writer
// (a goroutine, a descriptor, a place of PerAddr's) for as long as it
// keeps the connection, since a full TCP window blocks a write for
// ever; a slow reader is not cut off, only one that stopped. Files
// still go out with sendfile(2) (ReadFrom), a MiB at a time.
func Stall(ln net.Listener, d time.Duration) net.Listener {
	return &stallListener{Listener: ln, d: d}
}

type stallListener struct {
	net.Listener
	d time.Duration
}

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stallConn{Conn: c, d: l.d}, nil
}

// stallChunk is what one write deadline covers.
const stallChunk = 1 << 20

type stallConn struct {
	net.Conn
	d time.Duration
}

func (c *stallConn) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		c.Conn.SetWriteDeadline(time.Now().Add(c.d))
		k, err := c.Conn.Write(b[n:min(len(b), n+stallChunk)])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ReadFrom copies r a chunk at a time, each with its deadline, through
// the connection's own ReadFrom (sendfile for a file). A limited reader
// (what io.CopyN and net/http hand over) is unwrapped, so that the file
// under it still reaches sendfile.
func (c *stallConn) ReadFrom(r io.Reader) (sent int64, err error) {
	src, left := r, int64(-1) // -1: to EOF
	if lr, ok := r.(*io.LimitedReader); ok {
		src, left = lr.R, lr.N
		defer func() { lr.N -= sent }()
	}
	for left != 0 {
		chunk := int64(stallChunk)
		if left > 0 {
			chunk = min(chunk, left)
		}
		part := &io.LimitedReader{R: src, N: chunk}
		c.Conn.SetWriteDeadline(time.Now().Add(c.d))
		n, err := copyTo(c.Conn, part)
		sent += n
		if left > 0 {
			left -= n
		}
		if err != nil || part.N > 0 { // failed, or src ended
			return sent, err
		}
	}
	return sent, nil
}

// copyTo copies r to w through w's ReadFrom when it has one.
func copyTo(w io.Writer, r io.Reader) (int64, error) {
	if rf, ok := w.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w}, r)
}

// CloseWrite passes a half close on, for net/http and io.Copy.
func (c *stallConn) CloseWrite() error { return closeWrite(c.Conn) }

// Unwrap returns the connection underneath.
func (c *stallConn) Unwrap() net.Conn { return c.Conn }

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
