package fdisk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"unsafe"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"golang.org/x/sys/unix"
)

// The disk itself: opening it, its size and sector sizes, and telling
// the kernel about a new table. go-diskfs's gpt package encodes and
// decodes the table; its disk package, which would do the rest, links
// every filesystem go-diskfs can make (ext4, FAT32, ISO 9660, squashfs
// and their compressors) into beo, and their package inits run at the
// start of every beo applet (~0.3 ms of a `bpsh`). What is needed of it
// here is a handful of system calls.

// disk is an open disk: a block device, or a regular file standing for
// one (an image; tests).
type disk struct {
	f                 *os.File
	dev               bool  // a block device
	size              int64 // bytes
	logical, physical int64 // sector sizes, bytes
}

// openDisk opens path for reading, or for writing too. A block device
// opened for writing is opened exclusively (O_EXCL): the kernel refuses
// while a partition of it is mounted or the disk is otherwise held.
func openDisk(path string, write bool) (*disk, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	d := &disk{dev: fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0}
	switch {
	case d.dev:
	case fi.Mode().IsRegular():
		d.size, d.logical, d.physical = fi.Size(), 512, 512
	default:
		return nil, fmt.Errorf("%s: not a block device or a regular file", path)
	}
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
		if d.dev {
			flag |= unix.O_EXCL
		}
	}
	if d.f, err = os.OpenFile(path, flag, 0); err != nil {
		return nil, err
	}
	if d.dev {
		if err := d.geometry(); err != nil {
			d.f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return d, nil
}

// geometry asks the kernel for a block device's size and sector sizes.
func (d *disk) geometry() error {
	fd := int(d.f.Fd())
	var size uint64
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); e != 0 {
		return fmt.Errorf("BLKGETSIZE64: %w", e)
	}
	logical, err := unix.IoctlGetUint32(fd, unix.BLKSSZGET)
	if err != nil {
		return fmt.Errorf("BLKSSZGET: %w", err)
	}
	physical, err := unix.IoctlGetUint32(fd, unix.BLKPBSZGET)
	if err != nil {
		return fmt.Errorf("BLKPBSZGET: %w", err)
	}
	d.size, d.logical, d.physical = int64(size), int64(logical), int64(physical)
	return nil
}

func (d *disk) Close() error { return d.f.Close() }

// table reads the disk's GPT.
func (d *disk) table() (*gpt.Table, error) {
	return gpt.Read(d.f, int(d.logical), int(d.physical))
}

// write writes t to the disk and, on a block device, has the kernel take
// up the new partitions. old is the table the disk had (nil: none).
func (d *disk) write(t *gpt.Table, old *gpt.Table) error {
	if err := t.Write(d.f, d.size); err != nil {
		return err
	}
	if !d.dev {
		return nil
	}
	return d.reread(t, old)
}

// reread tells the kernel about the table just written. BLKRRPART drops
// and re-reads every partition at once, and is refused (EBUSY) while any
// of them is open: one mounted, or udev still probing one after the
// write. Then each partition whose place changed is deleted and added
// by itself (BLKPG), those unchanged left alone; a changed one in use
// cannot be, and the error says the table takes effect at the next boot.
func (d *disk) reread(t, old *gpt.Table) error {
	fd := int(d.f.Fd())
	rr := unix.IoctlSetInt(fd, unix.BLKRRPART, 0)
	if rr == nil {
		return nil
	}
	was, now := places(old, d.logical), places(t, d.logical)
	for n := 1; n <= MaxParts; n++ {
		w, had := was[n]
		p, has := now[n]
		if had == has && w == p {
			continue
		}
		if err := blkpg(fd, unix.BLKPG_DEL_PARTITION, n, place{}); err != nil && !errors.Is(err, unix.ENXIO) {
			return fmt.Errorf("the table is written but the kernel keeps partition %d until a reboot (BLKRRPART: %v; BLKPG: %w)", n, rr, err)
		}
		if !has {
			continue
		}
		if err := blkpg(fd, unix.BLKPG_ADD_PARTITION, n, p); err != nil {
			return fmt.Errorf("the table is written but the kernel does not know partition %d until a reboot (BLKRRPART: %v; BLKPG: %w)", n, rr, err)
		}
	}
	return nil
}

// place is a partition's first byte and length.
type place struct{ start, length int64 }

// places maps t's partitions by number (none for a nil t).
func places(t *gpt.Table, sector int64) map[int]place {
	m := map[int]place{}
	if t == nil {
		return m
	}
	for _, p := range t.Partitions {
		if p.Type != gpt.Unused {
			m[p.Index] = place{int64(p.Start) * sector, int64(p.End-p.Start+1) * sector}
		}
	}
	return m
}

// blkpg adds or deletes partition n of the disk open as fd.
func blkpg(fd, op, n int, p place) error {
	bp := unix.BlkpgPartition{Start: p.start, Length: p.length, Pno: int32(n)}
	arg := unix.BlkpgIoctlArg{Op: int32(op), Datalen: int32(unsafe.Sizeof(bp)), Data: (*byte)(unsafe.Pointer(&bp))}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.BLKPG, uintptr(unsafe.Pointer(&arg))); e != 0 {
		return e
	}
	return nil
}
