package initramfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/beo-cluster/beo/pkg/link"
)

// maxLinks bounds the symbolic links followed while resolving one library.
const maxLinks = 40

// etcFiles are the basics every node root has; the kickback name service
// answers everything beyond them.
func etcFiles() map[string]string {
	return map[string]string{
		"etc/passwd":        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"etc/group":         "root:x:0:\nnogroup:x:65534:\n",
		"etc/hosts":         "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
		"etc/nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n",
		"etc/os-release":    "NAME=\"beo compute node\"\nID=beo\n",
	}
}

func (p *pkgPlan) planRootfs(ctx context.Context, o Options) error {
	t := p.rootfs
	for _, d := range []struct {
		name string
		perm uint64
	}{
		{"tmp", 0o1777}, {"var/tmp", 0o1777}, {"root", 0o700}, {"home", 0o755},
		{"var/cache", 0o755}, {"etc/beowulf", 0o755}, {strings.TrimPrefix(KeysDir, "/"), 0o700},
	} {
		if err := t.dir(d.name, d.perm); err != nil {
			return err
		}
	}
	if err := mirrorLayout(t, o.HostRoot); err != nil {
		return err
	}
	etc := etcFiles()
	names := make([]string, 0, len(etc))
	for n := range etc {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := t.file(n, 0o644, []byte(etc[n])); err != nil {
			return err
		}
	}
	// Only the master's public key: a node makes its own key at boot
	// (pkg/link), so nothing here lets a host act as a node.
	masterPub, err := readMasterPub(o.Keys)
	if err != nil {
		return err
	}
	if err := t.file(filepath.Join(KeysDir, link.MasterPubFile), 0o644, masterPub); err != nil {
		return err
	}
	for _, lib := range o.Libraries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := addLibrary(t, lib); err != nil {
			o.Log.Warn("library not prestaged", "path", lib, "err", err)
		}
	}
	return nil
}

// topLevel are the directories of the root that usrmerge turns into
// links into /usr.
var topLevel = []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// mirrorLayout gives the node root the master's top-level layout: where
// the master's /bin (sbin, lib, lib64, …) is a link (Debian's usrmerge:
// /bin → usr/bin) the node's is the same link, else a directory; and
// /usr/bin, /usr/sbin exist. So a program the master resolves as
// /bin/sh runs as /bin/sh on the node, its file placed at /usr/bin/sh,
// and an NFS /usr from the master (pkg/fstab) brings the whole userland.
func mirrorLayout(t *tree, hostRoot string) error {
	for _, d := range []string{"usr/bin", "usr/sbin", "usr/lib"} {
		if err := t.dir(d, 0o755); err != nil {
			return err
		}
	}
	for _, name := range topLevel {
		fi, err := os.Lstat(filepath.Join(hostRoot, name))
		switch {
		case err != nil:
			continue // the master has none: neither does the node
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(filepath.Join(hostRoot, name))
			if err != nil {
				return err
			}
			if err := t.symlink(name, target); err != nil {
				return err
			}
		case fi.IsDir():
			if err := t.dir(name, 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

// addLibrary adds the host file lib, or the shared objects (names with
// ".so") directly inside the directory lib, at the same paths. Symbolic
// links on the way — in the parent directories (/lib → usr/lib) and the
// file itself (libc.so.6 → libc-2.36.so) — are carried as links with
// their targets, so the node sees the host's layout.
func addLibrary(t *tree, lib string) error {
	if !filepath.IsAbs(lib) {
		return errNotAbs
	}
	fi, err := os.Stat(lib)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return addHostPath(t, filepath.Clean(lib), 0)
	}
	ents, err := os.ReadDir(lib)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !strings.Contains(e.Name(), ".so") || e.IsDir() {
			continue
		}
		p := filepath.Join(lib, e.Name())
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			continue // dangling link or not a file
		}
		if err := addHostPath(t, p, 0); err != nil {
			return err
		}
	}
	return nil
}

// addHostPath adds the absolute, clean host path p: links among its
// directories become link members and are followed, a final link is
// added and followed, a regular file is copied with its permissions.
func addHostPath(t *tree, p string, hops int) error {
	if hops > maxLinks {
		return fmt.Errorf("%s: too many levels of symbolic links", p)
	}
	if p == "/" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := filepath.Join(cur, part)
		fi, err := os.Lstat(next)
		if err != nil {
			return err
		}
		last := i == len(parts)-1
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(next)
			if err != nil {
				return err
			}
			if err := t.symlink(next, target); err != nil && !sameLink(t, next, target) {
				return err
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(cur, target)
			}
			rest := filepath.Join(append([]string{target}, parts[i+1:]...)...)
			return addHostPath(t, filepath.Clean(rest), hops+1)
		case last && fi.Mode().IsRegular():
			if _, ok := t.recs[strings.TrimPrefix(next, "/")]; ok {
				return nil
			}
			return t.hostFile(next, uint64(fi.Mode().Perm()), next)
		case last:
			return fmt.Errorf("%s: not a regular file", next)
		case !fi.IsDir():
			return fmt.Errorf("%s: not a directory", next)
		}
		cur = next
	}
	return nil
}

func sameLink(t *tree, name, target string) bool {
	e, ok := t.recs[strings.TrimPrefix(name, "/")]
	return ok && string(e.data) == target
}
