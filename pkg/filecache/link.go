package filecache

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// modeBits are the parts of a mode that Link keeps.
const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// A Ref is one file of a closure as it lands on this machine: at Path
// (absolute), the stored content Hash with Mode, or — Target set — a
// symbolic link to Target.
type Ref struct {
	Path, Hash, Target string
	Mode               fs.FileMode
}

// Place makes every ref appear at its Path: the regular files first
// (Link), then the symbolic links (Symlink), so a link never points into
// a directory that does not exist yet while files are placed through it.
// A ref whose Path is still what Place last left there costs one lstat.
// The first failure ends it, naming the path.
func (c *Cache) Place(refs []Ref) error { return c.PlaceUnder("/", refs) }

// PlaceUnder is Place for refs whose paths lie under root (a node's root
// directory, in beo sim a directory of the simulation's): symbolic links
// in root's own path are followed, none below it (see place).
func (c *Cache) PlaceUnder(root string, refs []Ref) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, links := range []bool{false, true} {
		for _, r := range refs {
			if (r.Target != "") != links {
				continue
			}
			var err error
			if links {
				err = c.symlink(root, r.Target, r.Path)
			} else {
				err = c.link(root, r.Hash, r.Path, r.Mode)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// Link makes the stored file with this hash appear at dst with mode (its
// permission, setuid, setgid and sticky bits; never the group and other
// write bits, which would let anyone change the stored content every
// placement of it shares), creating dst's parent
// directories (0755) as needed and replacing whatever file or link was at
// dst in one rename. It hard-links when it can, so dst shares the cached
// inode; across file systems it copies. The content must be stored (the
// error wraps fs.ErrNotExist otherwise); dst must not be a directory.
func (c *Cache) Link(hash, dst string, mode fs.FileMode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.link("/", hash, dst, mode)
}

func (c *Cache) link(root, hash, dst string, mode fs.FileMode) error {
	if err := CheckHash(hash); err != nil {
		return fmt.Errorf("filecache: link %s: %w", dst, err)
	}
	// Never writable by group or others: placed files share the stored
	// inode, and a user whose 0777 program reached a node first made the
	// stored content world-writable — every later program with that
	// content (root's too) ran what the user wrote into it.
	mode &= modeBits &^ 0o022
	want := wanted{hash: hash, mode: mode}
	if c.unchanged(dst, want) {
		return nil
	}
	src, err := c.inode(hash, mode)
	if err == nil {
		err = place(root, src, dst, mode)
	}
	if err != nil {
		return fmt.Errorf("filecache: link %s to %s: %w", dst, hash, err)
	}
	c.remember(dst, want)
	return nil
}

// A placement is what Link or Symlink left at a path: what was wanted
// there and the file it became.
type placement struct {
	want     wanted
	dev, ino uint64
	size     int64
	mtime    int64
	mode     fs.FileMode
}

// wanted is what a path was placed for: content with a mode, or a link.
type wanted struct {
	hash   string
	mode   fs.FileMode
	target string
}

func placed(want wanted, fi fs.FileInfo) placement {
	p := placement{want: want, size: fi.Size(), mtime: fi.ModTime().UnixNano(), mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		p.dev, p.ino = uint64(st.Dev), st.Ino
	}
	return p
}

// unchanged reports whether dst is, by one lstat, still exactly what was
// left there for want: same inode, type, mode, size and mtime. c.mu is
// held.
func (c *Cache) unchanged(dst string, want wanted) bool {
	prev, ok := c.placed[dst]
	if !ok || prev.want != want {
		return false
	}
	fi, err := os.Lstat(dst)
	return err == nil && placed(want, fi) == prev
}

// remember records what dst now is, for unchanged. c.mu is held.
func (c *Cache) remember(dst string, want wanted) {
	fi, err := os.Lstat(dst)
	if err != nil {
		delete(c.placed, dst)
		return
	}
	if c.placed == nil {
		c.placed = map[string]placement{}
	}
	c.placed[dst] = placed(want, fi)
}

// inode returns a stored file with this content and mode: the file itself
// if it has the mode, or if nothing links to it yet (it then takes the
// mode); else a copy kept for the mode. c.mu is held.
func (c *Cache) inode(hash string, mode fs.FileMode) (string, error) {
	base := filepath.Join(c.dir, hash)
	fi, err := os.Lstat(base)
	if err != nil {
		return "", err
	}
	if fi.Mode()&modeBits == mode {
		return base, nil
	}
	variant := fmt.Sprintf("%s.%04o", base, unixMode(mode))
	if _, err := os.Lstat(variant); err == nil {
		return variant, nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink == 1 {
		return base, os.Chmod(base, mode)
	}
	tmp, err := os.CreateTemp(c.dir, ".mode-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := fill(tmp, base, mode); err != nil {
		return "", err
	}
	return variant, publish(tmp.Name(), variant)
}

// place puts src at dst: a hard link renamed over dst, or a copy.
// dst's directory is reached from under without following a symbolic
// link (parent): whoever may write a directory on the way — a user's
// /tmp/u/bin on a node, made a link to /etc there — must not lead root's
// files anywhere else. The paths placed are the master's real paths
// (pkg/elfdeps resolves them; the links on the way travel as links of
// their own), so a node whose tree mirrors the master's needs none.
func place(under, src, dst string, mode fs.FileMode) error {
	dir, base, err := parent(under, dst)
	if err != nil {
		return err
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	var di unix.Stat_t
	if unix.Fstatat(dfd, base, &di, unix.AT_SYMLINK_NOFOLLOW) == nil {
		var si unix.Stat_t
		if unix.Stat(src, &si) == nil && di.Dev == si.Dev && di.Ino == si.Ino {
			return nil
		}
	}
	tmp := "." + base + ".beo-" + rand.Text()
	err = unix.Linkat(unix.AT_FDCWD, src, dfd, tmp, 0)
	if err == nil {
		if err = unix.Renameat(dfd, tmp, dfd, base); err != nil {
			unix.Unlinkat(dfd, tmp, 0)
		}
		return pathErr("place", dst, err)
	}
	if !errors.Is(err, syscall.EXDEV) && !linkUnsupported(err) {
		return pathErr("link", dst, err)
	}
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return pathErr("create", dst, err)
	}
	if err := fill(os.NewFile(uintptr(fd), tmp), src, mode); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return err
	}
	if err := unix.Renameat(dfd, tmp, dfd, base); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return pathErr("place", dst, err)
	}
	return nil
}

// parent opens dst's directory, making the missing ones (0755), one
// component at a time from under (which is opened as it is) without
// following a symbolic link: a component that is one is an error (ELOOP,
// or ENOTDIR). It returns the directory and dst's last component.
func parent(under, dst string) (*os.File, string, error) {
	clean, under := filepath.Clean(dst), filepath.Clean(under)
	rel, err := filepath.Rel(under, clean)
	if !filepath.IsAbs(clean) || !filepath.IsAbs(under) || err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil, "", fmt.Errorf("%s: not a file path under %s", dst, under)
	}
	dirPath, base := filepath.Split(rel)
	fd, err := unix.Open(under, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", pathErr("open", under, err)
	}
	for _, comp := range strings.Split(strings.Trim(dirPath, "/"), "/") {
		if comp == "" {
			continue
		}
		next, err := unix.Openat(fd, comp, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			if err = unix.Mkdirat(fd, comp, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				next, err = unix.Openat(fd, comp, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		unix.Close(fd)
		if err != nil {
			if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
				err = fmt.Errorf("%w (a symbolic link or a file: files are not placed through one)", err)
			}
			return nil, "", pathErr("open", dst, err)
		}
		fd = next
	}
	return os.NewFile(uintptr(fd), filepath.Join(under, dirPath)), base, nil
}

// fill copies src into the new file f, sets mode, syncs and closes f.
func fill(f *os.File, src string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err == nil {
		_, err = io.Copy(f, in)
		in.Close()
	}
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// pathErr is err on path for op (nil for nil).
func pathErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: path, Err: err}
}

// Symlink makes dst a symbolic link to target, creating dst's parent
// directories (0755) as needed and replacing whatever file or link was at
// dst in one rename; a link that is already right is left alone, and so
// is a directory at dst (the node has a real directory where the master
// has a link: the files below it are placed at their own paths).
func (c *Cache) Symlink(target, dst string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.symlink("/", target, dst)
}

func (c *Cache) symlink(root, target, dst string) error {
	want := wanted{target: target}
	if c.unchanged(dst, want) {
		return nil
	}
	if err := symlink(root, target, dst); err != nil {
		return fmt.Errorf("filecache: symlink %s -> %s: %w", dst, target, err)
	}
	c.remember(dst, want)
	return nil
}

func symlink(under, target, dst string) error {
	fi, err := os.Lstat(dst)
	if err == nil && fi.IsDir() {
		return nil
	}
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if cur, err := os.Readlink(dst); err == nil && cur == target {
			return nil
		}
	}
	dir, base, err := parent(under, dst)
	if err != nil {
		return err
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	tmp := "." + base + ".beo-" + rand.Text()
	if err := unix.Symlinkat(target, dfd, tmp); err != nil {
		return pathErr("symlink", dst, err)
	}
	if err := unix.Renameat(dfd, tmp, dfd, base); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return pathErr("place", dst, err)
	}
	return nil
}

// linkUnsupported reports whether a hard link failed because the file
// system (or its protected_hardlinks policy, or a link count limit) does
// not allow one here, so a copy should be made instead.
func linkUnsupported(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EOPNOTSUPP) ||
		errors.Is(err, syscall.EMLINK) || errors.Is(err, syscall.ENOSYS)
}

// unixMode is mode as the octal number chmod(1) takes.
func unixMode(mode fs.FileMode) uint32 {
	m := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}
