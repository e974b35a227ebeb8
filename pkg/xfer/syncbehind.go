package xfer

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncWindow is how much a file being written gets ahead of its writeback.
const syncWindow = 8 << 20

// syncBehind wraps f so that every syncWindow bytes written start their
// writeback (sync_file_range SYNC_FILE_RANGE_WRITE, which does not wait).
// The fsync that must still come before the rename then finds most of
// the file on its way to the disk instead of all of it in the page cache:
// the disk works while the network delivers, and a large copy does not
// end with seconds of flushing. It changes no guarantee; a file system
// that does not support it (or a tmpfs, where there is nothing to write
// back) just ignores the hint.
func syncBehind(f *os.File) *syncWriter { return &syncWriter{f: f} }

type syncWriter struct {
	f       *os.File
	off     int64 // bytes written
	started int64 // writeback started up to here
}

func (w *syncWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= syncWindow {
		unix.SyncFileRange(int(w.f.Fd()), w.started, w.off-w.started, unix.SYNC_FILE_RANGE_WRITE)
		w.started = w.off
	}
	return n, err
}
