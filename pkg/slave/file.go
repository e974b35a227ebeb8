package slave

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/beo-cluster/beo/pkg/creds"
	"github.com/beo-cluster/beo/pkg/wire"
)

// put writes a bpcp tar stream under Root+File.Path as the caller, then
// replies with a Result.
//
// If the path is an existing directory, the entries land inside it (cp's
// "into"); otherwise the archive's single top-level entry becomes the path
// itself: one file, or with Recursive a directory tree. Every regular file
// is written to a temporary file in its directory, synced and renamed over
// the old one, so a failure leaves the old file and no temporary behind.
// With Preserve, mode (set-id bits included) and mtime come from the
// header; otherwise the mode is the header's masked by 0777 and the mtime
// is now. Directory entries need Recursive. Regular files, directories and
// symlinks are supported; other entry types are refused.
func (ss *session) put(st net.Conn, f *wire.File) {
	log := ss.log.With("node", ss.node, "op", "put", "path", f.Path, "uid", f.Cred.UID)
	dst := rooted(ss.cfg.Root, f.Path)
	err := creds.Do(f.Cred, func() error {
		return untar(tar.NewReader(st), dst, f.Recursive, f.Preserve)
	})
	if err != nil {
		log.Warn("put failed", "err", err)
		ss.refuse(st, fmt.Sprintf("node %d: put %s: %s", ss.node, f.Path, ss.view(err)))
		return
	}
	drain(st) // whatever follows the archive's end, up to the master's close
	st.SetWriteDeadline(time.Now().Add(drainTimeout))
	if err := wire.Write(st, wire.Result{}); err != nil {
		log.Warn("put: result not delivered", "err", err)
	}
	st.Close()
}

// dirMeta is what a directory gets once its entries are written.
type dirMeta struct {
	path  string
	mode  fs.FileMode
	chmod bool
	mtime time.Time // zero: leave it
}

// untar extracts tr at dst (see put).
func untar(tr *tar.Reader, dst string, recursive, preserve bool) error {
	fi, err := os.Stat(dst)
	into := err == nil && fi.IsDir()
	var top string
	var dirs []dirMeta
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name, err := entryName(h.Name)
		if err != nil {
			return err
		}
		p := filepath.Join(dst, name)
		if !into {
			first, rest, _ := strings.Cut(name, "/")
			if top == "" {
				top = first
			} else if first != top {
				return fmt.Errorf("several entries (%s, %s) but not a directory", top, first)
			}
			p = filepath.Join(dst, rest)
		}
		if recursive && p != dst {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
		}
		mode := fs.FileMode(h.Mode) & fs.ModePerm
		if preserve {
			mode = tarMode(h.Mode)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if !recursive {
				return fmt.Errorf("%s is a directory (recursive copy not requested)", h.Name)
			}
			d, err := mkdir(p, mode, preserve)
			if err != nil {
				return err
			}
			if preserve {
				d.mtime = h.ModTime
			}
			dirs = append(dirs, d)
		case tar.TypeReg:
			if err := writeFile(p, tr, mode, preserve, h); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := replaceSymlink(p, h.Linkname); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unsupported entry type %q", h.Name, h.Typeflag)
		}
	}
	// Deepest first, so setting a parent's mtime comes after its children.
	for _, d := range slices.Backward(dirs) {
		if d.chmod {
			if err := os.Chmod(d.path, d.mode); err != nil {
				return err
			}
		}
		if !d.mtime.IsZero() {
			if err := os.Chtimes(d.path, d.mtime, d.mtime); err != nil {
				return err
			}
		}
	}
	return nil
}

// tarMode converts a tar header's mode bits to a FileMode with set-id and
// sticky bits.
func tarMode(m int64) fs.FileMode {
	mode := fs.FileMode(m) & fs.ModePerm
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// entryName cleans an archive name into a relative path that stays inside
// the target.
func entryName(n string) (string, error) {
	c := filepath.Clean(strings.TrimRight(n, "/"))
	if c == "." || filepath.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("archive entry %q: not a relative path inside the target", n)
	}
	return c, nil
}

// mkdir makes a directory writable by its owner while entries land in
// it; its final mode is applied at the end (a new directory always gets
// it, an existing one only with preserve).
func mkdir(p string, mode fs.FileMode, preserve bool) (dirMeta, error) {
	d := dirMeta{path: p, mode: mode}
	err := os.Mkdir(p, 0o700)
	switch {
	case err == nil:
		d.chmod = true
	case errors.Is(err, fs.ErrExist):
		fi, serr := os.Stat(p)
		if serr != nil || !fi.IsDir() {
			return d, err
		}
		d.chmod = preserve
	default:
		return d, err
	}
	return d, nil
}

// writeFile writes r's content to p atomically.
func writeFile(p string, r io.Reader, mode fs.FileMode, preserve bool, h *tar.Header) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".beo-"+filepath.Base(p)+"-")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) { // name the file wanted, not the temporary
			err = &fs.PathError{Op: "create", Path: p, Err: pe.Err}
		}
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	_, err = io.Copy(tmp, r)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && preserve {
		at := h.AccessTime
		if at.IsZero() {
			at = h.ModTime
		}
		err = os.Chtimes(tmp.Name(), at, h.ModTime)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	return err
}

// replaceSymlink points p at target, replacing whatever p was, atomically.
func replaceSymlink(p, target string) error {
	tmp := tempName(p)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// get answers with a Result, then a tar stream of Root+File.Path read as
// the caller: one entry named after the path's last element, and with
// Recursive for a directory everything below it as NAME/…. A missing or
// unreadable path, or a directory without Recursive, is a Result error. A
// failure after the Result (a file vanishing mid-walk) cuts the stream
// short, so the reader sees a truncated archive, never a silently partial
// one.
func (ss *session) get(st net.Conn, f *wire.File) {
	log := ss.log.With("node", ss.node, "op", "get", "path", f.Path, "uid", f.Cred.UID)
	src := rooted(ss.cfg.Root, f.Path)
	replied := false
	err := creds.Do(f.Cred, func() error {
		fi, err := os.Stat(src)
		if err != nil {
			return err
		}
		if fi.IsDir() && !f.Recursive {
			return errors.New("is a directory (recursive copy not requested)")
		}
		if err := readable(src, fi); err != nil {
			return err
		}
		replied = true
		if err := wire.Write(st, wire.Result{}); err != nil {
			return err
		}
		tw := tar.NewWriter(st)
		if err := writeTar(tw, src, fi); err != nil {
			return err
		}
		return tw.Close()
	})
	switch {
	case err != nil && !replied:
		log.Warn("get failed", "err", err)
		ss.refuse(st, fmt.Sprintf("node %d: get %s: %s", ss.node, f.Path, ss.view(err)))
	case err != nil:
		log.Warn("get cut short", "err", err)
		st.Close()
	default:
		st.Close()
	}
}

// readable checks, before anything is sent, that every file below src can
// be opened and every directory read.
func readable(src string, fi fs.FileInfo) error {
	if !fi.IsDir() {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		return f.Close()
	}
	return filepath.WalkDir(src+"/", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		return f.Close()
	})
}

// writeTar writes src (a file, or a directory tree) to tw.
func writeTar(tw *tar.Writer, src string, fi fs.FileInfo) error {
	base := filepath.Base(src)
	if !fi.IsDir() {
		return addFile(tw, src, base, fi)
	}
	root := src + "/" // follow src itself if it is a symlink to a directory
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return addFile(tw, p, filepath.Join(base, rel), info)
	})
}

// addFile writes one entry; types tar cannot carry meaningfully (devices,
// sockets, fifos) are skipped.
func addFile(tw *tar.Writer, p, name string, fi fs.FileInfo) error {
	var link string
	switch {
	case fi.Mode().IsRegular(), fi.IsDir():
	case fi.Mode()&fs.ModeSymlink != 0:
		l, err := os.Readlink(p)
		if err != nil {
			return err
		}
		link = l
	default:
		return nil
	}
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	h.Name = filepath.ToSlash(name)
	if fi.IsDir() {
		h.Name += "/"
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(tw, io.LimitReader(f, fi.Size()))
	if err == nil && n != fi.Size() {
		err = fmt.Errorf("%s shrank while being read", p)
	}
	return err
}
