package config

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxFileSize bounds what ReadFile reads: 16 MiB. A config for a
// million nodes (one node line each, ~40 bytes) fits in 40 MB, but
// Scyld's largest clusters had a few thousand: 16 MiB is far beyond any
// real config or fstab, and still small enough to hold in memory.
const MaxFileSize = 16 << 20

// ReadFile reads a config file (or an fstab, pkg/fstab) for parsing:
// only a regular file, after following symlinks, of at most MaxFileSize
// bytes. A device (/dev/zero would be read forever), a FIFO (which would
// block until something writes to it), a socket or a directory is
// refused, as is a larger file; the error names the file. A missing
// file's error satisfies errors.Is(err, fs.ErrNotExist).
//
// The file is opened without blocking (O_NONBLOCK, which does nothing to
// a regular file) and checked through the open descriptor, so a FIFO
// never stalls the open and nothing can swap the file between the check
// and the read.
func ReadFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s); refusing to read it", path, fileKind(st.Mode()))
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s: %d bytes, larger than the %d MiB a config or fstab may have; refusing to read it", path, st.Size(), MaxFileSize>>20)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxFileSize { // it grew while being read
		return nil, fmt.Errorf("%s: larger than the %d MiB a config or fstab may have; refusing to read it", path, MaxFileSize>>20)
	}
	return data, nil
}

// fileKind names the type of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "type " + m.Type().String()
}
