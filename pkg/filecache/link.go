package filecache

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// modeBits are the parts of a mode that Link keeps.
const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// Link makes the stored file with this hash appear at dst with mode (its
// permission, setuid, setgid and sticky bits), creating dst's parent
// directories (0755) as needed and replacing whatever file or link was at
// dst in one rename. It hard-links when it can, so dst shares the cached
// inode; across file systems it copies. The content must be stored (the
// error wraps fs.ErrNotExist otherwise); dst must not be a directory.
func (c *Cache) Link(hash, dst string, mode fs.FileMode) error {
	if err := checkHash(hash); err != nil {
		return fmt.Errorf("filecache: link %s: %w", dst, err)
	}
	mode &= modeBits
	src, err := c.inode(hash, mode)
	if err == nil {
		err = place(src, dst, mode)
	}
	if err != nil {
		return fmt.Errorf("filecache: link %s to %s: %w", dst, hash, err)
	}
	return nil
}

// inode returns a stored file with this content and mode: the file itself
// if it has the mode, or if nothing links to it yet (it then takes the
// mode); else a copy kept for the mode.
func (c *Cache) inode(hash string, mode fs.FileMode) (string, error) {
	base := filepath.Join(c.dir, hash)
	c.mu.Lock()
	defer c.mu.Unlock()
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
func place(src, dst string, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if di, err := os.Lstat(dst); err == nil {
		if si, err := os.Stat(src); err == nil && os.SameFile(di, si) {
			return nil
		}
	}
	tmp := tempName(dst)
	err := os.Link(src, tmp)
	if err == nil {
		if err = os.Rename(tmp, dst); err != nil {
			os.Remove(tmp)
		}
		return err
	}
	if !errors.Is(err, syscall.EXDEV) && !linkUnsupported(err) {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".beo-*")
	if err != nil {
		return err
	}
	if err := fill(f, src, mode); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
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

// Symlink makes dst a symbolic link to target, creating dst's parent
// directories (0755) as needed and replacing whatever file or link was at
// dst in one rename; a link that is already right is left alone. It fails
// if dst is a directory (the node has a real directory where the master
// has a link: put the files under it instead).
func (c *Cache) Symlink(target, dst string) error {
	if err := symlink(target, dst); err != nil {
		return fmt.Errorf("filecache: symlink %s -> %s: %w", dst, target, err)
	}
	return nil
}

func symlink(target, dst string) error {
	if cur, err := os.Readlink(dst); err == nil && cur == target {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := tempName(dst)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// tempName is an unused name beside dst for building its replacement.
func tempName(dst string) string {
	return filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".beo-"+rand.Text())
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
