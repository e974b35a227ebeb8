package filecache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func open(t *testing.T) *Cache {
	t.Helper()
	c, err := Open(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// names lists the entries of dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, e := range es {
		n = append(n, e.Name())
	}
	return n
}

func TestPutConcurrent(t *testing.T) {
	c := open(t)
	content := bytes.Repeat([]byte("libc.so.6 "), 100_000)
	hash := sum(content)
	const n = 32
	paths := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var r io.Reader = bytes.NewReader(content)
			if i%2 == 0 {
				r = iotest.HalfReader(r) // slow writers overlap more
			}
			paths[i], errs[i] = c.Put(hash, r)
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || paths[i] != filepath.Join(c.Dir(), hash) {
			t.Errorf("Put %d = %q, %v", i, paths[i], errs[i])
		}
	}
	got, err := os.ReadFile(paths[0])
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("stored content differs (%d bytes, %v)", len(got), err)
	}
	if !c.Has(hash) {
		t.Error("Has = false after Put")
	}
	if got := names(t, c.Dir()); len(got) != 1 || got[0] != hash {
		t.Errorf("cache holds %q, want just %s (no temp files)", got, hash)
	}
	if fi, _ := os.Stat(paths[0]); fi.Mode().Perm() != 0o444 {
		t.Errorf("stored mode %v, want read-only", fi.Mode())
	}
}

func TestPutRejects(t *testing.T) {
	content := []byte("#!/bin/sh\necho hello\n")
	hash := sum(content)
	flipped := bytes.Clone(content)
	flipped[3] ^= 1
	for _, tt := range []struct {
		name string
		hash string
		r    io.Reader
		want error
	}{
		{"corrupted byte", hash, bytes.NewReader(flipped), ErrMismatch},
		{"truncated", hash, bytes.NewReader(content[:10]), ErrMismatch},
		{"extra bytes", hash, io.MultiReader(bytes.NewReader(content), strings.NewReader("x")), ErrMismatch},
		{"empty", hash, strings.NewReader(""), ErrMismatch},
		{"stream error", hash, io.MultiReader(bytes.NewReader(content[:5]), iotest.ErrReader(io.ErrUnexpectedEOF)), io.ErrUnexpectedEOF},
		{"short hash", hash[:63], bytes.NewReader(content), ErrBadHash},
		{"upper case", strings.ToUpper(hash), bytes.NewReader(content), ErrBadHash},
		{"path in hash", "../" + hash[3:], bytes.NewReader(content), ErrBadHash},
		{"empty hash", "", bytes.NewReader(content), ErrBadHash},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := open(t)
			p, err := c.Put(tt.hash, tt.r)
			if !errors.Is(err, tt.want) {
				t.Errorf("Put = %q, %v; want error %v", p, err, tt.want)
			}
			if c.Has(hash) {
				t.Error("Has = true after a failed Put")
			}
			if got := names(t, c.Dir()); len(got) != 0 {
				t.Errorf("cache holds %q after a failed Put", got)
			}
		})
	}
}

func TestPutStoredReadsNothing(t *testing.T) {
	c := open(t)
	content := []byte("data")
	if _, err := c.Put(sum(content), bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	p, err := c.Put(sum(content), iotest.ErrReader(errors.New("read")))
	if err != nil || p != filepath.Join(c.Dir(), sum(content)) {
		t.Errorf("second Put = %q, %v; want the stored path without reading", p, err)
	}
}

func TestPath(t *testing.T) {
	c := open(t)
	content := []byte("x")
	if _, err := c.Path(sum(content)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Path before Put: %v, want fs.ErrNotExist", err)
	}
	if _, err := c.Path("nothex"); !errors.Is(err, ErrBadHash) {
		t.Errorf("Path(nothex): %v, want ErrBadHash", err)
	}
	want, _ := c.Put(sum(content), bytes.NewReader(content))
	if got, err := c.Path(sum(content)); got != want || err != nil {
		t.Errorf("Path = %q, %v; want %q", got, err, want)
	}
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestLink(t *testing.T) {
	c := open(t)
	content := []byte("\x7fELF pretend")
	hash := sum(content)
	if _, err := c.Put(hash, bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir() // same file system as the cache: hard links
	for _, tt := range []struct {
		dst      string
		mode     fs.FileMode
		sameAs   string // a dst of an earlier row sharing the inode, if any
		notSame  string // a dst of an earlier row that must not share it
		existing string // what is at dst before: "file", "link"
	}{
		{dst: "/usr/bin/prog", mode: 0o755},
		{dst: "/opt/bin/prog", mode: 0o755, sameAs: "/usr/bin/prog"},
		{dst: "/lib/libx.so", mode: 0o644, notSame: "/usr/bin/prog"},
		{dst: "/lib32/libx.so", mode: 0o644, sameAs: "/lib/libx.so"},
		{dst: "/sbin/suid", mode: 0o755 | fs.ModeSetuid, notSame: "/usr/bin/prog"},
		{dst: "/bin/replaced", mode: 0o755, sameAs: "/usr/bin/prog", existing: "file"},
		{dst: "/bin/was-link", mode: 0o755, sameAs: "/usr/bin/prog", existing: "link"},
		{dst: "/usr/bin/prog", mode: 0o755, sameAs: "/opt/bin/prog"}, // again: nothing to do
	} {
		dst := filepath.Join(root, tt.dst)
		switch tt.existing {
		case "file":
			os.MkdirAll(filepath.Dir(dst), 0o755)
			os.WriteFile(dst, []byte("old"), 0o600)
		case "link":
			os.MkdirAll(filepath.Dir(dst), 0o755)
			os.Symlink("/nowhere", dst)
		}
		mode := tt.mode
		if err := c.Link(hash, dst, mode); err != nil {
			t.Fatalf("Link(%s, %v): %v", tt.dst, mode, err)
		}
		fi, err := os.Lstat(dst)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode() & modeBits; got != mode || !fi.Mode().IsRegular() {
			t.Errorf("%s: mode %v, want %v", tt.dst, fi.Mode(), mode)
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, content) {
			t.Errorf("%s: content %q", tt.dst, got)
		}
		if tt.sameAs != "" && inode(t, dst) != inode(t, filepath.Join(root, tt.sameAs)) {
			t.Errorf("%s: not the same inode as %s", tt.dst, tt.sameAs)
		}
		if tt.notSame != "" && inode(t, dst) == inode(t, filepath.Join(root, tt.notSame)) {
			t.Errorf("%s: shares the inode of %s despite another mode", tt.dst, tt.notSame)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(c.Dir(), hash)); !bytes.Equal(got, content) {
		t.Error("cached content changed")
	}
	for _, dir := range []string{c.Dir(), filepath.Join(root, "bin")} {
		for _, n := range names(t, dir) {
			if strings.HasPrefix(n, ".") {
				t.Errorf("temp file %s left in %s", n, dir)
			}
		}
	}
}

func TestLinkErrors(t *testing.T) {
	c := open(t)
	root := t.TempDir()
	missing := sum([]byte("never stored"))
	if err := c.Link(missing, filepath.Join(root, "x"), 0o755); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Link of missing content: %v, want fs.ErrNotExist", err)
	}
	if err := c.Link("../../etc/passwd", filepath.Join(root, "x"), 0o755); !errors.Is(err, ErrBadHash) {
		t.Errorf("Link of bad hash: %v, want ErrBadHash", err)
	}
	content := []byte("y")
	c.Put(sum(content), bytes.NewReader(content))
	os.MkdirAll(filepath.Join(root, "adir", "sub"), 0o755)
	if err := c.Link(sum(content), filepath.Join(root, "adir"), 0o755); err == nil {
		t.Error("Link over a directory succeeded")
	}
}

// TestLinkCopiesAcrossFileSystems needs a second file system: /dev/shm.
func TestLinkCopiesAcrossFileSystems(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "filecache-test-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	c := open(t)
	var a, b syscall.Stat_t
	if syscall.Stat(c.Dir(), &a) != nil || syscall.Stat(shm, &b) != nil || a.Dev == b.Dev {
		t.Skip("/dev/shm is on the same file system as the temp dir")
	}
	content := []byte("copy me")
	c.Put(sum(content), bytes.NewReader(content))
	dst := filepath.Join(shm, "lib", "libcopy.so")
	if err := c.Link(sum(content), dst, 0o640); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("Stat(dst) = %v, %v; want mode 0640", fi, err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, content) {
		t.Errorf("copied content %q", got)
	}
	if n := names(t, filepath.Dir(dst)); len(n) != 1 {
		t.Errorf("dst dir holds %q, want just the file", n)
	}
}

func TestSymlink(t *testing.T) {
	c := open(t)
	root := t.TempDir()
	for _, tt := range []struct {
		name, target, before string // before: "", "file", "link", "dir"
		wantErr              bool
	}{
		{name: "/lib64", target: "usr/lib64"},
		{name: "/lib64", target: "usr/lib64"}, // again: left alone
		{name: "/usr/lib64/ld-linux-x86-64.so.2", target: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
		{name: "/lib/libz.so.1", target: "libz.so.1.2.13", before: "file"},
		{name: "/lib/libm.so.6", target: "libm-2.36.so", before: "link"},
		{name: "/lib/real", target: "usr/lib", before: "dir", wantErr: true},
	} {
		p := filepath.Join(root, tt.name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		switch tt.before {
		case "file":
			os.WriteFile(p, []byte("x"), 0o644)
		case "link":
			os.Symlink("elsewhere", p)
		case "dir":
			os.MkdirAll(filepath.Join(p, "x"), 0o755)
		}
		err := c.Symlink(tt.target, p)
		if tt.wantErr {
			if err == nil {
				t.Errorf("Symlink(%s) over a directory succeeded", tt.name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Symlink(%s): %v", tt.name, err)
		}
		if got, err := os.Readlink(p); got != tt.target || err != nil {
			t.Errorf("Readlink(%s) = %q, %v; want %q", tt.name, got, err, tt.target)
		}
	}
	for _, n := range names(t, filepath.Join(root, "lib")) {
		if strings.HasPrefix(n, ".") {
			t.Errorf("temp file %s left", n)
		}
	}
}
