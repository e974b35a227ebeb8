package xfer

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Plan is the checked list of entries Pack writes for a set of sources.
type Plan struct {
	entries []entry
}

type entry struct {
	path string // on this machine
	name string // in the archive, slash-separated, no trailing slash
	fi   fs.FileInfo
	link string // symlink target
}

// Pack writes srcs to w as one complete tar stream; see the package doc.
// Nothing is written when a source is missing, unreadable or a directory
// without Recursive.
func Pack(w io.Writer, srcs []string, opts Options) error {
	p, err := Scan(srcs, opts)
	if err != nil {
		return err
	}
	return p.Write(w)
}

// Scan walks srcs and checks them without writing anything: each source
// exists, is a regular file or (with Recursive) a directory, every file in
// it can be opened and every directory read, and no two sources share a
// name.
func Scan(srcs []string, opts Options) (*Plan, error) {
	p := &Plan{}
	top := map[string]string{}
	for _, src := range srcs {
		name, err := topName(src)
		if err != nil {
			return nil, err
		}
		if prev, ok := top[name]; ok {
			return nil, fmt.Errorf("%s and %s would both land as %s", prev, src, name)
		}
		top[name] = src
		fi, err := os.Stat(src) // a source named by the user is followed
		if err != nil {
			return nil, named(src, err)
		}
		switch {
		case fi.Mode().IsRegular():
			if err := readable(src); err != nil {
				return nil, err
			}
			p.entries = append(p.entries, entry{path: src, name: name, fi: fi})
		case fi.IsDir():
			if !opts.Recursive {
				return nil, fmt.Errorf("%s: is a directory (use -r)", src)
			}
			if err := p.walk(src, name, fi); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s: not a regular file or directory", src)
		}
	}
	return p, nil
}

// topName is the archive name of a source: its last element.
func topName(src string) (string, error) {
	if src == "" {
		return "", fmt.Errorf("empty file name")
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return "", named(src, err)
	}
	name := filepath.Base(abs)
	if name == string(filepath.Separator) {
		return "", fmt.Errorf("%s: cannot copy the root directory", src)
	}
	return name, nil
}

// walk adds the directory dir (archive name name) and everything below it.
func (p *Plan) walk(dir, name string, fi fs.FileInfo) error {
	p.entries = append(p.entries, entry{path: dir, name: name, fi: fi})
	des, err := os.ReadDir(dir)
	if err != nil {
		return named(dir, err)
	}
	for _, de := range des {
		path, child := filepath.Join(dir, de.Name()), name+"/"+de.Name()
		info, err := de.Info() // lstat: links stay links
		if err != nil {
			return named(path, err)
		}
		switch {
		case info.IsDir():
			if err := p.walk(path, child, info); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := readable(path); err != nil {
				return err
			}
			p.entries = append(p.entries, entry{path: path, name: child, fi: info})
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return named(path, err)
			}
			p.entries = append(p.entries, entry{path: path, name: child, fi: info, link: target})
		default: // device, fifo, socket: not copied
		}
	}
	return nil
}

func readable(path string) error {
	f, err := openRegular(path)
	if err != nil {
		return err
	}
	f.Close()
	return nil
}

// openRegular opens path, which was a regular file when it was looked at,
// for reading, and checks it still is. O_NONBLOCK (no effect on a regular
// file's reads) keeps a file swapped for a fifo meanwhile from blocking
// the open: bpmaster opens users' files, and a fifo must not pin its
// thread.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, named(path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, named(path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return f, nil
}

// Write writes the planned entries to w as a complete tar stream. On error
// the stream is left without its end-of-archive marker.
func (p *Plan) Write(w io.Writer) error {
	tw := tar.NewWriter(w)
	if err := p.Add(tw); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	return nil
}

// Add writes the planned entries to tw without ending the archive, so
// several sources (local plans, streams from nodes through Append) can be
// merged into one.
func (p *Plan) Add(tw *tar.Writer) error {
	for _, e := range p.entries {
		if err := e.write(tw); err != nil {
			return err
		}
	}
	return nil
}

func (e entry) write(tw *tar.Writer) error {
	h, err := tar.FileInfoHeader(e.fi, e.link)
	if err != nil {
		return named(e.path, err)
	}
	h.Name = e.name
	if e.fi.IsDir() {
		h.Name += "/"
	}
	h.ModTime = e.fi.ModTime().Truncate(time.Second)
	h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
	h.Uname, h.Gname = "", ""
	if !e.fi.Mode().IsRegular() {
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: write archive: %w", e.path, err)
		}
		return nil
	}
	f, err := openRegular(e.path)
	if err != nil {
		return err
	}
	defer f.Close()
	var body io.Reader = io.LimitReader(f, h.Size)
	if sizeUnknown(f, h.Size) {
		b, err := io.ReadAll(io.LimitReader(f, pseudoMax+1))
		switch {
		case err != nil:
			return named(e.path, err)
		case len(b) > pseudoMax:
			return fmt.Errorf("%s: a kernel file of over %d MiB: not copied", e.path, pseudoMax>>20)
		}
		h.Size, body = int64(len(b)), bytes.NewReader(b)
	}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%s: write archive: %w", e.path, err)
	}
	n, err := copyBulk(tw, body)
	if err != nil {
		return fmt.Errorf("%s: %w", e.path, bare(err))
	}
	if n != h.Size {
		return fmt.Errorf("%s: shrank while being copied", e.path)
	}
	return nil
}

// pseudoMax bounds what is read of a file whose size stat does not
// tell (sizeUnknown).
const pseudoMax = 16 << 20

// sizeUnknown reports whether f's size, as stat gave it, says nothing of
// its content: a file stat calls empty, or one on a kernel pseudo
// filesystem (/proc/cpuinfo is 0 bytes, a /sys attribute 4096, whatever
// they hold). Its
// content is then read whole first, and its length is the size
// copied; `bpcp 3:/proc/cpuinfo .` copies what cat would print.
func sizeUnknown(f *os.File, size int64) bool {
	if size == 0 {
		return true
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return false
	}
	switch st.Type {
	case unix.PROC_SUPER_MAGIC, unix.SYSFS_MAGIC, unix.CGROUP_SUPER_MAGIC, unix.CGROUP2_SUPER_MAGIC,
		unix.DEBUGFS_MAGIC, unix.TRACEFS_MAGIC, unix.SECURITYFS_MAGIC, unix.EFIVARFS_MAGIC, unix.BPF_FS_MAGIC:
		return true
	}
	return false
}
