package xfer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Unpack reads a tar stream from r into dst; see the package doc for
// where entries land, what is refused and what a failure leaves behind.
func Unpack(r io.Reader, dst string, opts Options) (err error) {
	if dst == "" {
		return errors.New("empty destination")
	}
	u := &unpacker{opts: opts, rd: newReader(r), known: map[known]bool{}}
	defer func() {
		if err != nil {
			u.rollback()
		}
		u.close()
	}()
	mustDir := strings.HasSuffix(dst, "/")
	dst = filepath.Clean(dst) // as messages name it
	target := dst
	if fi, err := os.Lstat(dst); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if real, err := filepath.EvalSymlinks(dst); err == nil {
			target = real // a link the user named is followed, as cp does
		}
	}
	fi, err := os.Stat(target)
	switch {
	case err == nil && fi.IsDir():
		root, err := os.OpenRoot(target)
		if err != nil {
			return named(dst, err)
		}
		u.roots = append(u.roots, root)
		if err := u.into(root, dst); err != nil {
			return err
		}
	case err == nil || errors.Is(err, fs.ErrNotExist):
		parent, err := os.OpenRoot(filepath.Dir(target))
		if err != nil {
			return named(dst, err)
		}
		u.roots = append(u.roots, parent)
		if err := u.as(parent, filepath.Base(target), dst, mustDir); err != nil {
			return err
		}
	default:
		return named(dst, err)
	}
	return u.commit()
}

// unpacker carries one Unpack: the staged files waiting for the commit
// and the directories it made, to finish or undo.
type unpacker struct {
	opts   Options
	rd     *reader
	roots  []*os.Root
	staged []staged
	dirs   []dirMeta

	inPlaceMeta []inPlaceMeta  // -p's attributes for in-place files
	known       map[known]bool // directories known to exist
}

type known struct {
	root *os.Root
	name string
}

// staged is a temporary waiting to be renamed over its target, or (into
// set) data waiting to be written into its target in place.
type staged struct {
	root      *os.Root
	tmp, name string // relative to root
	display   string
	into      *os.File // the target, open for writing: written in place
	data      *os.File // what into gets: a file without a name
}

// dirMeta is a directory to finish after the commit, or to remove on
// failure if Unpack created it.
type dirMeta struct {
	root    *os.Root
	name    string
	display string
	created bool
	final   bool // apply mode (and owner, times) at the end
	h       *tar.Header
}

func (u *unpacker) close() {
	for _, r := range slices.Backward(u.roots) {
		r.Close()
	}
}

// into lands every entry inside the existing directory root (dst).
func (u *unpacker) into(root *os.Root, dst string) error {
	for {
		h, err := u.rd.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return named(dst, err)
		}
		if skip(h) {
			continue
		}
		name, err := entryName(h.Name)
		if err != nil {
			return fmt.Errorf("%s: %w", dst, err)
		}
		if err := u.place(root, name, filepath.Join(dst, name), h); err != nil {
			return err
		}
	}
}

// as lands the stream's single top-level entry as dst itself: base in
// parent.
func (u *unpacker) as(parent *os.Root, base, dst string, mustDir bool) error {
	var top string
	var sub *os.Root // the created directory, once the top entry was one
	done := false    // a single file was staged
	for {
		h, err := u.rd.next()
		if errors.Is(err, io.EOF) {
			if top == "" {
				return fmt.Errorf("%s: empty archive", dst)
			}
			return nil
		}
		if err != nil {
			return named(dst, err)
		}
		if skip(h) {
			continue
		}
		name, err := entryName(h.Name)
		if err != nil {
			return fmt.Errorf("%s: %w", dst, err)
		}
		first, rest, nested := strings.Cut(name, "/")
		if done || (top != "" && first != top) {
			return named(dst, syscall.ENOTDIR) // several sources need a directory
		}
		if top == "" {
			top = first
			switch {
			case !nested && h.Typeflag == tar.TypeReg:
				if mustDir {
					return named(dst, syscall.ENOTDIR)
				}
				if err := u.file(parent, base, dst, h); err != nil {
					return err
				}
				done = true
				continue
			case nested || h.Typeflag == tar.TypeDir:
				if !u.opts.Recursive {
					return fmt.Errorf("%s: is a directory (use -r)", top)
				}
				top := h
				if nested { // no entry for the directory itself
					top = &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}
				}
				if err := u.dir(parent, base, dst, top, !nested); err != nil {
					return err
				}
				if sub, err = parent.OpenRoot(base); err != nil {
					return named(dst, err)
				}
				u.roots = append(u.roots, sub)
				if !nested {
					continue
				}
			case h.Typeflag == tar.TypeSymlink:
				return fmt.Errorf("%s: %s is a symbolic link, not a file or directory", dst, top)
			default:
				return u.refuse(dst, h)
			}
		}
		if !nested { // the top directory again
			if h.Typeflag != tar.TypeDir {
				return named(dst, syscall.ENOTDIR)
			}
			continue
		}
		if err := u.place(sub, rest, filepath.Join(dst, rest), h); err != nil {
			return err
		}
	}
}

// skip reports entries that carry nothing to land: PAX global headers,
// and devices and fifos, which Pack does not send either.
func skip(h *tar.Header) bool {
	switch h.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return true
	}
	return false
}

func (u *unpacker) refuse(display string, h *tar.Header) error {
	if h.Typeflag == tar.TypeLink {
		return fmt.Errorf("%s: hard links are not supported", display)
	}
	return fmt.Errorf("%s: unsupported archive entry type %q", display, h.Typeflag)
}

// place lands one entry at name inside root.
func (u *unpacker) place(root *os.Root, name, display string, h *tar.Header) error {
	if dir, _, nested := strings.Cut(name, "/"); nested && !u.opts.Recursive {
		return fmt.Errorf("%s: is a directory (use -r)", dir)
	}
	if err := u.parents(root, name, display); err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeReg:
		return u.file(root, name, display, h)
	case tar.TypeDir:
		if !u.opts.Recursive {
			return fmt.Errorf("%s: is a directory (use -r)", name)
		}
		return u.dir(root, name, display, h, true)
	case tar.TypeSymlink:
		return u.symlink(root, name, display, h)
	}
	return u.refuse(display, h)
}

// parents makes the directories above name that do not exist yet (an
// archive need not list them), remembering them for the rollback.
func (u *unpacker) parents(root *os.Root, name, display string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	base := display // display is name under the root's own display name
	for range strings.Count(name, "/") {
		base = filepath.Dir(base)
	}
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		p := dir[:i]
		if u.known[known{root, p}] {
			continue
		}
		at := filepath.Join(base, filepath.FromSlash(p))
		err := root.Mkdir(p, 0o755)
		switch {
		case err == nil:
			u.dirs = append(u.dirs, dirMeta{root: root, name: p, display: at, created: true})
			u.known[known{root, p}] = true
		case errors.Is(err, fs.ErrExist):
			fi, err := root.Stat(p)
			if err != nil {
				return named(at, err)
			}
			if !fi.IsDir() {
				return named(at, syscall.ENOTDIR)
			}
			u.known[known{root, p}] = true
		default:
			return named(at, err)
		}
	}
	return nil
}

// Limits on entry names: PATH_MAX, and a depth beyond any real tree that
// keeps the per-component walks of os.Root cheap.
const (
	maxName  = 4096
	maxDepth = 256
)

// entryName checks an archive name and returns it cleaned, slash-separated,
// without a trailing slash.
func entryName(n string) (string, error) {
	if strings.ContainsRune(n, 0) {
		return "", fmt.Errorf("archive entry %q: bad name", n)
	}
	if len(n) > maxName || strings.Count(n, "/") > maxDepth {
		return "", fmt.Errorf("archive entry %.40q...: name too long or too deep", n)
	}
	if path.IsAbs(n) {
		return "", fmt.Errorf("archive entry %q: absolute name", n)
	}
	if slices.Contains(strings.Split(n, "/"), "..") {
		return "", fmt.Errorf("archive entry %q: name has a .. element", n)
	}
	c := path.Clean(n)
	if c == "." {
		return "", fmt.Errorf("archive entry %q: empty name", n)
	}
	return c, nil
}

// notDir refuses to replace an existing directory with something else.
func notDir(root *os.Root, name, display string) error {
	fi, err := root.Lstat(name)
	if err == nil && fi.IsDir() {
		return fmt.Errorf("%s: cannot overwrite a directory with a non-directory", display)
	}
	return nil
}

// file stages a regular file: its data in a temporary next to name,
// or where the target must be written in place (see existing), in a
// file without a name in the temporary directory.
func (u *unpacker) file(root *os.Root, name, display string, h *tar.Header) (err error) {
	old, into, err := existing(root, name, display)
	if err != nil {
		return err
	}
	if old != nil && !old.Mode().IsRegular() {
		return u.special(into, display)
	}
	inPlace := into != nil && links(old) > 1
	tmp := "" // the file has no name while its data arrives (createUnnamed)
	var f, dir *os.File
	if !inPlace {
		if f, dir = createUnnamed(root, name); f == nil {
			tmp, f, err = createTemp(root, name)
			if into != nil && (errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)) {
				inPlace, err = true, nil // a file the caller may write, in a directory they may not
			}
			if err != nil {
				into.Close()
				return named(display, err)
			}
		} else {
			defer dir.Close()
		}
	}
	if inPlace {
		return u.inPlace(root, name, display, h, into)
	}
	if into != nil {
		into.Close()
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil && tmp != "" {
			root.Remove(tmp)
		}
	}()
	if _, err := copyBulk(syncBehind(f), u.rd); err != nil {
		if errors.Is(err, ErrTruncated) {
			return fmt.Errorf("%s: %w", display, err)
		}
		return named(display, err)
	}
	mode := u.mode(h)
	switch {
	case u.opts.Preserve: // before chmod: chown clears set-id bits
		if err := chown(f.Chown, h); err != nil {
			return named(display, err)
		}
	case old != nil: // the file it replaces keeps its owner and mode, as with cp
		st := old.Sys().(*syscall.Stat_t)
		chown(f.Chown, &tar.Header{Uid: int(st.Uid), Gid: int(st.Gid)})
		mode = old.Mode() & fs.ModePerm
	}
	if err := f.Chmod(mode); err != nil {
		return named(display, err)
	}
	if err := f.Sync(); err != nil {
		return named(display, err)
	}
	if tmp == "" {
		if tmp, err = nameTemp(dir, name, f); err != nil {
			return named(display, err)
		}
	}
	err = f.Close()
	f = nil
	if err != nil {
		return named(display, err)
	}
	if u.opts.Preserve {
		if err := root.Chtimes(tmp, atime(h), h.ModTime); err != nil {
			return named(display, err)
		}
	}
	u.staged = append(u.staged, staged{root: root, tmp: tmp, name: name, display: display})
	return nil
}

// existing looks at what is at name now. A regular file is returned with
// into, the file opened for writing (nil when the file is being executed:
// it is then replaced, never written). Writing it must be allowed, as cp
// would need: a rename could replace a file its owner made read-only.
// A device is returned with into open for writing too; a directory, a
// socket or a fifo is refused. Nothing there: nil, nil.
func existing(root *os.Root, name, display string) (fs.FileInfo, *os.File, error) {
	fi, err := root.Lstat(name)
	switch {
	case err != nil:
		return nil, nil, nil // nothing there, or nothing to know: creating will tell
	case fi.IsDir():
		return nil, nil, fmt.Errorf("%s: cannot overwrite a directory with a non-directory", display)
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, nil, nil // replaced by the rename, never written through
	case fi.Mode()&fs.ModeSocket != 0:
		return nil, nil, fmt.Errorf("%s: is a socket", display)
	case fi.Mode()&fs.ModeNamedPipe != 0:
		// Not written into: a reader that never reads would hold the
		// writer (a node's thread, under a borrowed identity) for ever.
		return nil, nil, fmt.Errorf("%s: is a fifo: bpcp does not write into one", display)
	}
	// O_NONBLOCK: a device that would make an open wait does not.
	f, err := root.OpenFile(name, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	switch {
	case errors.Is(err, syscall.ETXTBSY):
		return fi, nil, nil
	case err != nil:
		return nil, nil, named(display, err)
	}
	if err := clearNonblock(f); err != nil {
		f.Close()
		return nil, nil, named(display, err)
	}
	return fi, f, nil
}

// clearNonblock makes writes to f wait again (a fifo whose reader is slow).
func clearNonblock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}

// links is fi's link count.
func links(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// special writes the data of one file into a device as it
// arrives, as cp does: what is there cannot be replaced whole, and
// replacing it with a regular file (bpcp x /dev/null as root) would break
// the system. Its mode, owner and times are left alone.
func (u *unpacker) special(into *os.File, display string) error {
	defer into.Close()
	if _, err := copyBulk(into, u.rd); err != nil {
		if errors.Is(err, ErrTruncated) {
			return fmt.Errorf("%s: %w", display, err)
		}
		return named(display, err)
	}
	return nil
}

// inPlace stages a file that must be written into its target rather than
// replace it: one with other hard links (they keep seeing it, as with cp),
// or one the caller may write in a directory they may not. Its data waits
// whole in a file without a name in the temporary directory, so a cut
// transfer leaves the target untouched; commit then writes it in.
func (u *unpacker) inPlace(root *os.Root, name, display string, h *tar.Header, into *os.File) (err error) {
	data, err := anonymousTemp()
	if err != nil {
		into.Close()
		return named(display, err)
	}
	defer func() {
		if err != nil {
			into.Close()
			data.Close()
		}
	}()
	if _, err := copyBulk(data, u.rd); err != nil {
		if errors.Is(err, ErrTruncated) {
			return fmt.Errorf("%s: %w", display, err)
		}
		return named(display, err)
	}
	u.staged = append(u.staged, staged{root: root, name: name, display: display, into: into, data: data})
	if !u.opts.Preserve {
		return nil
	}
	u.inPlaceMeta = append(u.inPlaceMeta, inPlaceMeta{len(u.staged) - 1, h})
	return nil
}

// inPlaceMeta is an in-place file's header, for -p's attributes after
// the commit wrote it.
type inPlaceMeta struct {
	i int
	h *tar.Header
}

// anonymousTemp is a file without a name in the temporary directory.
func anonymousTemp() (*os.File, error) {
	dir := os.TempDir()
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)")), nil
	}
	f, err := os.CreateTemp(dir, ".beo-xfer-")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}

// writeIn writes a staged in-place file into its target.
func (s staged) writeIn() error {
	defer s.into.Close()
	defer s.data.Close()
	if _, err := s.data.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := s.into.Truncate(0); err != nil {
		return err
	}
	if _, err := copyBulk(s.into, s.data); err != nil {
		return err
	}
	return s.into.Sync()
}

// symlink stages a symbolic link under a temporary name.
func (u *unpacker) symlink(root *os.Root, name, display string, h *tar.Header) error {
	if h.Linkname == "" {
		return fmt.Errorf("%s: symbolic link with an empty target", display)
	}
	if err := notDir(root, name, display); err != nil {
		return err
	}
	for range 100 {
		tmp := tempName(name)
		err := root.Symlink(h.Linkname, tmp)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return named(display, err)
		}
		if u.opts.Preserve {
			if err := chown(func(uid, gid int) error { return root.Lchown(tmp, uid, gid) }, h); err != nil {
				root.Remove(tmp)
				return named(display, err)
			}
		}
		u.staged = append(u.staged, staged{root: root, tmp: tmp, name: name, display: display})
		return nil
	}
	return fmt.Errorf("%s: no free temporary name", display)
}

// dir makes (or reuses) a directory; its final mode comes after the commit.
// meta says whether h is a real entry whose attributes apply.
func (u *unpacker) dir(root *os.Root, name, display string, h *tar.Header, meta bool) error {
	d := dirMeta{root: root, name: name, display: display, h: h}
	err := root.Mkdir(name, 0o700)
	switch {
	case err == nil:
		d.created, d.final = true, meta
	case errors.Is(err, fs.ErrExist):
		fi, serr := root.Stat(name)
		if serr != nil {
			return named(display, serr)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s: cannot overwrite a non-directory with a directory", display)
		}
		d.final = meta && u.opts.Preserve
	default:
		return named(display, err)
	}
	u.dirs = append(u.dirs, d)
	u.known[known{root, name}] = true
	return nil
}

// mode is the permission an entry lands with.
func (u *unpacker) mode(h *tar.Header) fs.FileMode {
	m := fs.FileMode(h.Mode) & fs.ModePerm
	if u.opts.Preserve {
		if h.Mode&0o4000 != 0 {
			m |= fs.ModeSetuid
		}
		if h.Mode&0o2000 != 0 {
			m |= fs.ModeSetgid
		}
		if h.Mode&0o1000 != 0 {
			m |= fs.ModeSticky
		}
	}
	return m
}

// chown gives a file the archive's owner and group as cp -p does: both if
// allowed (root), else just the group (a group the caller is in), else
// neither — a refusal is not an error. Under creds.Do the effective uid
// stays 0 but the kernel checks the borrowed fsuid, so trying is the only
// way to know.
func chown(fn func(uid, gid int) error, h *tar.Header) error {
	err := fn(h.Uid, h.Gid)
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EINVAL) {
		err = fn(-1, h.Gid)
	}
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return err
}

func atime(h *tar.Header) time.Time {
	if h.AccessTime.IsZero() {
		return h.ModTime
	}
	return h.AccessTime
}

// commit renames every staged temporary over its target, then finishes
// the directories, deepest first.
//
// A large file a rename replaces is kept open across its rename and closed
// in the background (holdReplaced), so the copy does not wait while the
// filesystem frees the old file's blocks.
func (u *unpacker) commit() error {
	var held []*os.File
	defer func() {
		if len(held) > 0 {
			go func() {
				for _, f := range held {
					f.Close()
				}
			}()
		}
	}()
	for i, s := range u.staged {
		if s.into != nil {
			if err := s.writeIn(); err != nil {
				u.staged = u.staged[i+1:]
				return named(s.display, err)
			}
			continue
		}
		if f := holdReplaced(s.root, s.name); f != nil {
			held = append(held, f)
		}
		if err := s.root.Rename(s.tmp, s.name); err != nil {
			u.staged = u.staged[i:] // the rest are removed by the rollback
			return named(s.display, err)
		}
	}
	for _, m := range u.inPlaceMeta {
		s := u.staged[m.i]
		if err := chown(func(uid, gid int) error { return s.root.Lchown(s.name, uid, gid) }, m.h); err != nil {
			return named(s.display, err)
		}
		if err := s.root.Chmod(s.name, u.mode(m.h)); err != nil {
			return named(s.display, err)
		}
		if err := s.root.Chtimes(s.name, atime(m.h), m.h.ModTime); err != nil {
			return named(s.display, err)
		}
	}
	u.staged = nil
	var first error
	for _, d := range slices.Backward(u.dirs) {
		if !d.final {
			continue
		}
		if err := u.finish(d); err != nil && first == nil {
			first = err
		}
	}
	u.dirs = nil
	return first
}

// holdFrom is the size from which a replaced file is held (holdReplaced).
const holdFrom = 8 << 20

// holdReplaced opens the file a rename is about to replace, when it is a
// large regular file with no other link, and returns it (nil otherwise,
// or when the caller may not read it). A filesystem frees a file's blocks
// when its last link and its last descriptor are gone, in the process
// that drops the last one: for a rename over a 256 MiB file on ext4 that
// is the rename itself, ~70 ms here. Holding the old file open moves the
// freeing to the close, which commit does in the background once the new
// file is in place. Nothing else changes: the old file is unlinked by the
// rename as before, and only read-opened.
func holdReplaced(root *os.Root, name string) *os.File {
	fi, err := root.Lstat(name)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() < holdFrom {
		return nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Nlink != 1 {
		return nil // another name keeps the blocks anyway
	}
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	return f
}

func (u *unpacker) finish(d dirMeta) error {
	if u.opts.Preserve {
		if err := chown(func(uid, gid int) error { return d.root.Lchown(d.name, uid, gid) }, d.h); err != nil {
			return named(d.display, err)
		}
	}
	if err := d.root.Chmod(d.name, u.mode(d.h)); err != nil {
		return named(d.display, err)
	}
	if u.opts.Preserve {
		if err := d.root.Chtimes(d.name, atime(d.h), d.h.ModTime); err != nil {
			return named(d.display, err)
		}
	}
	return nil
}

// rollback removes every staged temporary and every directory Unpack
// created (deepest first; one that is not empty is left).
func (u *unpacker) rollback() {
	for _, s := range u.staged {
		if s.into != nil {
			s.into.Close()
			s.data.Close()
			continue
		}
		s.root.Remove(s.tmp)
	}
	for _, d := range slices.Backward(u.dirs) {
		if d.created {
			d.root.Remove(d.name)
		}
	}
}

// createTemp creates a new temporary file next to name.
func createTemp(root *os.Root, name string) (string, *os.File, error) {
	for range 100 {
		tmp := tempName(name)
		f, err := root.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return tmp, f, err
	}
	return "", nil, fmt.Errorf("no free temporary name")
}

// procFD is where the kernel shows a process's open files; nameTemp
// links an unnamed file through it (linkat with AT_EMPTY_PATH would need
// CAP_DAC_READ_SEARCH).
const procFD = "/proc/self/fd/"

// canName reports whether procFD is there to name unnamed files with.
var canName = sync.OnceValue(func() bool {
	_, err := os.Stat(procFD)
	return err == nil
})

// createUnnamed opens a file without a name (O_TMPFILE) in name's
// directory, and that directory, to name it in (nameTemp); nil, nil
// where that cannot be (a filesystem without O_TMPFILE, such as NFS, or
// no /proc): a file's data then arrives under its temporary name. An
// unnamed file whose writer dies mid-copy (a SIGKILLed bpcp, a crashed
// bpslave) is freed by the kernel, where a named temporary would stay
// behind, holding a diskless node's memory.
func createUnnamed(root *os.Root, name string) (f, dir *os.File) {
	if !canName() {
		return nil, nil
	}
	dir, err := root.Open(path.Dir(name))
	if err != nil {
		return nil, nil
	}
	fd, err := unix.Openat(int(dir.Fd()), ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		dir.Close()
		return nil, nil
	}
	return os.NewFile(uintptr(fd), path.Join(dir.Name(), "(unnamed)")), dir
}

// nameTemp gives the unnamed file f a temporary name in dir, next to
// name, once its data is whole, and returns that name.
func nameTemp(dir *os.File, name string, f *os.File) (string, error) {
	src := procFD + strconv.Itoa(int(f.Fd()))
	for range 100 {
		tmp := tempName(name)
		err := unix.Linkat(unix.AT_FDCWD, src, int(dir.Fd()), path.Base(tmp), unix.AT_SYMLINK_FOLLOW)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", &os.LinkError{Op: "link", Old: src, New: tmp, Err: err}
		}
		return tmp, nil
	}
	return "", fmt.Errorf("no free temporary name")
}

// tempName is a temporary name in name's directory: ".beo-BASE-RANDOM",
// BASE cut short so the result stays within NAME_MAX.
func tempName(name string) string {
	dir, base := path.Split(name)
	if len(base) > 64 {
		base = base[:64]
	}
	return dir + ".beo-" + base + "-" + strconv.FormatUint(rand.Uint64(), 36)
}
