package initramfs

import (
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// tree is the content of one archive: records by name (relative, no
// leading slash, as cpio.Normalize makes it). Regular files from the host
// are read when the archive is written, so building a tree is cheap.
type tree struct {
	recs map[string]entry
}

// entry is one archive member: a cpio record header, and for a regular
// file either its bytes or the host file to copy them from.
type entry struct {
	info cpio.Info
	data []byte // contents of a file or symlink made here
	src  string // host file to copy, for regular files
}

func newTree() *tree { return &tree{recs: map[string]entry{}} }

func (t *tree) put(name string, e entry) error {
	name = cpio.Normalize(name)
	if name == "" || name == "." {
		return fmt.Errorf("archive: empty member name")
	}
	if path.Clean(name) != name || strings.HasPrefix(name, "../") || name == ".." {
		return fmt.Errorf("archive: bad member name %q", name)
	}
	if old, ok := t.recs[name]; ok && !(isDir(old.info.Mode) && isDir(e.info.Mode)) {
		return fmt.Errorf("archive: %s added twice", name)
	}
	e.info.Name = name
	t.recs[name] = e
	return nil
}

func isDir(mode uint64) bool { return mode&cpio.S_IFMT == cpio.S_IFDIR }

func (t *tree) dir(name string, perm uint64) error {
	return t.put(name, entry{info: cpio.Info{Mode: cpio.S_IFDIR | perm}})
}

func (t *tree) file(name string, perm uint64, data []byte) error {
	return t.put(name, entry{info: cpio.Info{Mode: cpio.S_IFREG | perm, FileSize: uint64(len(data))}, data: data})
}

func (t *tree) hostFile(name string, perm uint64, src string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", src)
	}
	return t.put(name, entry{info: cpio.Info{Mode: cpio.S_IFREG | perm, FileSize: uint64(fi.Size())}, src: src})
}

func (t *tree) symlink(name, target string) error {
	return t.put(name, entry{info: cpio.Info{Mode: cpio.S_IFLNK | 0o777, FileSize: uint64(len(target))}, data: []byte(target)})
}

func (t *tree) charDev(name string, perm, major, minor uint64) error {
	return t.put(name, entry{info: cpio.Info{Mode: cpio.S_IFCHR | perm, Rmajor: major, Rminor: minor}})
}

// names returns every member name with the parents it implies, sorted so
// that "." comes first and each directory before what it holds.
func (t *tree) names() []string {
	for n := range t.recs {
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			if _, ok := t.recs[d]; !ok {
				t.recs[d] = entry{info: cpio.Info{Name: d, Mode: cpio.S_IFDIR | 0o755}}
			}
		}
	}
	ns := make([]string, 0, len(t.recs))
	for n := range t.recs {
		ns = append(ns, n)
	}
	// Sort by path components so "a/b" comes right after "a", before "a-c".
	sort.Slice(ns, func(i, j int) bool {
		return strings.ReplaceAll(ns[i], "/", "\x00") < strings.ReplaceAll(ns[j], "/", "\x00")
	})
	return ns
}

// write writes t as a newc cpio archive: "." (0755) first, every parent
// directory explicitly as 0755 unless added with another mode, then the
// members in path order, all owned by root with mtime 0 and inode numbers
// counted from 1 — so the same tree gives the same bytes.
func (t *tree) write(w io.Writer) error {
	cw := cpio.Newc.Writer(w)
	ino := uint64(1)
	root := cpio.Info{Name: ".", Mode: cpio.S_IFDIR | 0o755, NLink: 2, Ino: ino}
	if err := cw.WriteRecord(cpio.Record{Info: root}); err != nil {
		return err
	}
	for _, n := range t.names() {
		ino++
		e := t.recs[n]
		info := e.info
		info.Ino = ino
		info.NLink = 1
		if isDir(info.Mode) {
			info.NLink = 2
		}
		rec := cpio.Record{Info: info}
		var closeSrc func() error
		switch {
		case e.src != "":
			f, err := os.Open(e.src)
			if err != nil {
				return err
			}
			closeSrc = f.Close
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return err
			}
			if uint64(fi.Size()) != info.FileSize {
				f.Close()
				return fmt.Errorf("%s changed size while building the archive", e.src)
			}
			rec.ReaderAt = f
		case e.data != nil:
			rec.ReaderAt = strings.NewReader(string(e.data))
		}
		rec = cpio.MakeReproducible(rec)
		err := cw.WriteRecord(rec)
		if closeSrc != nil {
			closeSrc()
		}
		if err != nil {
			return fmt.Errorf("archive %s: %w", n, err)
		}
	}
	return cpio.WriteTrailer(cw)
}
