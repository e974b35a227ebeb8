// Package atomicfile replaces files so that a reader sees the old contents
// or the new ones, never a mix — after a crash too. Every file beo rewrites
// in place goes through it: the cluster config (boot-stage rewrites, nodes
// beoserv appends), unknown_addresses, the name files beonss maintains,
// the cluster keys, bplib's list, the boot package.
//
// The recipe: a temporary file in the target's directory (so the rename
// cannot cross file systems) receives the bytes and the permission bits and
// is fsynced; it is renamed over the target; the directory is fsynced so the
// rename itself survives a crash. On any failure the temporary file is
// removed and the target is untouched. A target that is a symbolic link is
// not replaced by a regular file: its final target is. The new file keeps
// the old one's owner and group where the writer may give them (root).
package atomicfile

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Write replaces path with what fill writes, with permission bits perm.
// The parent directory is created (0755) if missing.
func Write(path string, perm fs.FileMode, fill func(io.Writer) error) (err error) {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if old, err := os.Stat(path); err == nil {
		// The file it replaces keeps its owner and group where the writer
		// may give them (root): a root:admins config stays so.
		if st, ok := old.Sys().(*syscall.Stat_t); ok {
			tmp.Chown(int(st.Uid), int(st.Gid))
			tmp.Chmod(perm) // chown clears set-id bits
		}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// WriteFile replaces path with data, with permission bits perm.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(data))
		return err
	})
}

// Perm returns the permission bits of the file at path (following
// symbolic links), or def when there is none: a rewrite keeps the mode an
// admin gave the file.
func Perm(path string, def fs.FileMode) fs.FileMode {
	if fi, err := os.Stat(path); err == nil {
		return fi.Mode().Perm()
	}
	return def
}
