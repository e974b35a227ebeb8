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
	"strings"
	"time"

	"github.com/beo-cluster/beo/pkg/creds"
	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/beo-cluster/beo/pkg/xfer"
)

// put lands a bpcp tar stream at Root+File.Path as the caller
// (pkg/xfer's Unpack, under pkg/creds), then replies with a Result.
//
// If the path is an existing directory, the entries land inside it (cp's
// "into"); otherwise the archive's single top-level entry becomes the path
// itself: one file, or with Recursive a directory tree. The copy lands
// whole or not at all: every file is staged under a temporary name, its
// data synced, and all are renamed into place only once the archive's end
// has arrived intact; a failure removes every temporary. Every file
// operation goes through an os.Root at the target, so no symbolic link
// leads a write out of it. With Preserve, mode (set-id bits included),
// mtime and, for a root caller, owner come from the archive; otherwise
// the mode is the archive's masked by 0777 and the mtime is now.
func (ss *session) put(st net.Conn, f *wire.File) {
	log := ss.log.With("node", ss.node, "op", "put", "path", f.Path, "uid", f.Cred.UID)
	dst := rooted(ss.cfg.Root, f.Path)
	if strings.HasSuffix(f.Path, "/") {
		dst += "/" // must end up a directory
	}
	err := creds.Do(f.Cred, func() error {
		return xfer.Unpack(st, dst, xfer.Options{Recursive: f.Recursive, Preserve: f.Preserve})
	})
	if err != nil {
		log.Warn("put failed", "err", err)
		ss.refuse(st, fmt.Sprintf("node %d: %s", ss.node, ss.view(err))) // xfer names the file
		return
	}
	drain(st) // whatever follows the archive's end, up to the master's close
	st.SetWriteDeadline(time.Now().Add(drainTimeout))
	if err := wire.Write(st, wire.Result{}); err != nil {
		log.Warn("put: result not delivered", "err", err)
	}
	st.Close()
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
	n, err := io.CopyBuffer(tw, io.LimitReader(f, fi.Size()), make([]byte, 1<<20))
	if err == nil && n != fi.Size() {
		err = fmt.Errorf("%s shrank while being read", p)
	}
	return err
}
