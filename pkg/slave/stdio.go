package slave

import (
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// The plumbing of a process's stdio, made with as few system calls as
// the kernel allows: on a node running many short jobs they are a good
// part of each job's cost.

// pipe returns a pipe for a process's stdin (childReads) or its stdout or
// stderr. The child's end stays blocking and outside the runtime's
// netpoller, as a program expects its fds; bpslave's end is non-blocking
// and polled. (os.Pipe makes both ends non-blocking and polled, and
// os.StartProcess then turns the child's end back: six system calls a
// pipe for nothing.)
func pipe(childReads bool) (ours, theirs *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, os.NewSyscallError("pipe2", err)
	}
	our, their := p[0], p[1]
	if childReads {
		our, their = p[1], p[0]
	}
	if err := unix.SetNonblock(our, true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(our), "|stdio"), os.NewFile(uintptr(their), "|stdio"), nil
}

// devNull returns /dev/null for processes without stdio (-N, -n), opened
// once (a failure is retried next time): each child gets its own copy of
// the descriptor at the fork, and bpslave never closes it.
func devNull() (*os.File, error) {
	nullMu.Lock()
	defer nullMu.Unlock()
	if nullFile == nil {
		f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		nullFile = f
	}
	return nullFile, nil
}

var (
	nullMu   sync.Mutex
	nullFile *os.File
)

// isDevNull reports whether f is devNull's file.
func isDevNull(f *os.File) bool {
	nullMu.Lock()
	defer nullMu.Unlock()
	return f == nullFile
}

// relayBufs recycles the buffers stdio is relayed through: two or three
// per job, each of which would otherwise be a fresh 32 KiB to allocate,
// zero and collect.
var relayBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// relay copies src to dst until EOF, as io.Copy does, through a pooled
// buffer.
func relay(dst io.Writer, src io.Reader) error {
	b := relayBufs.Get().(*[]byte)
	defer relayBufs.Put(b)
	_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *b)
	return err
}
