package slave

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/beo-cluster/beo/pkg/filecache"
)

// placer puts a program's files at their paths under the node's root,
// through the node's file cache (filecache.Cache.Place: hard links to
// the stored files, one lstat per file that is still in place).
type placer struct {
	root  string
	cache *filecache.Cache
}

// place puts every file of a closure in place under the root.
func (pl *placer) place(files []fileRef) error {
	refs := make([]filecache.Ref, len(files))
	for i, f := range files {
		refs[i] = filecache.Ref{Path: rooted(pl.root, f.Path), Hash: f.Hash, Target: f.Target, Mode: f.mode()}
	}
	return pl.cache.PlaceUnder(pl.root, refs)
}

// path maps an absolute path on the master to the node's view of it.
// Cleaning it as an absolute path first keeps ".." from leaving root.
func rooted(root, p string) string {
	return filepath.Join(root, filepath.Clean("/"+p))
}

// fileRef is a wire.FileRef that passed checks.
type fileRef struct {
	Path, Hash, Target string
	Mode               uint32
}

// mode is the permission a placed file gets: the master's, never set-id.
func (f fileRef) mode() fs.FileMode {
	if m := fs.FileMode(f.Mode) & 0o755; m != 0 { // never group- or other-writable (filecache.Link)
		return m
	}
	return 0o755
}

// checkRef validates one closure entry.
func checkRef(path, hash, target string) error {
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("closure file %q: not an absolute path", path)
	}
	if target == "" {
		if err := filecache.CheckHash(hash); err != nil {
			return fmt.Errorf("closure file %s: %w", path, err)
		}
	}
	return nil
}
