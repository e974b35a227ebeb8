package elfdeps

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// maxLinks is the kernel's limit on symlinks followed in one lookup
// (MAXSYMLINKS), past which open fails with ELOOP.
const maxLinks = 40

// resolved is a name looked up inside root the way the kernel would.
type resolved struct {
	real  string      // every symlink resolved, absolute, clean
	links []Symlink   // the links passed, in order, each once
	info  fs.FileInfo // of real, not a symlink
}

// resolve looks name (absolute, in root's view) up under root, following
// symlinks component by component, absolute targets from root, ".." stopping at
// root. It fails with an error wrapping fs.ErrNotExist when any component is
// missing.
func resolve(root, name string) (resolved, error) {
	var r resolved
	cur := "/"
	rest := splitPath(name)
	hops := 0
	seen := map[string]bool{}
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		if c == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			return resolved{}, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if len(rest) > 0 && !fi.IsDir() {
				return resolved{}, &fs.PathError{Op: "lstat", Path: next, Err: syscall.ENOTDIR}
			}
			cur, r.info = next, fi
			continue
		}
		if hops++; hops > maxLinks {
			return resolved{}, &fs.PathError{Op: "lstat", Path: name, Err: syscall.ELOOP}
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return resolved{}, err
		}
		if !seen[next] {
			seen[next] = true
			r.links = append(r.links, Symlink{Name: next, Target: target})
		}
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		rest = append(splitPath(target), rest...)
		r.info = nil
	}
	if r.info == nil { // name was "/" or ended in ".."
		fi, err := os.Stat(filepath.Join(root, cur))
		if err != nil {
			return resolved{}, err
		}
		r.info = fi
	}
	r.real = cur
	return r, nil
}

// splitPath splits p into its components, dropping empty ones and ".".
func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// fileID identifies a file the way ld.so does (st_dev, st_ino).
type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), st.Ino}, true
}

// notFound reports whether err means "no such file here, look elsewhere",
// as ld.so treats ENOENT, ENOTDIR and EACCES from open.
func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) ||
		errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ELOOP)
}

// abs makes p absolute against dir (both in root's view).
func abs(dir, p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return path.Join(dir, p)
}
