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
	"slices"
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
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var r io.Reader = bytes.NewReader(content)
			if i%2 == 0 {
				r = iotest.HalfReader(r) // slow writers overlap more
			}
			errs[i] = c.Put(hash, int64(len(content)), r)
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Put %d: %v", i, errs[i])
		}
	}
	stored := filepath.Join(c.Dir(), hash)
	got, err := os.ReadFile(stored)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("stored content differs (%d bytes, %v)", len(got), err)
	}
	if !c.Has(hash) {
		t.Error("Has = false after Put")
	}
	if got := names(t, c.Dir()); len(got) != 1 || got[0] != hash {
		t.Errorf("cache holds %q, want just %s (no temp files)", got, hash)
	}
	if fi, _ := os.Stat(stored); fi.Mode().Perm() != 0o444 {
		t.Errorf("stored mode %v, want read-only", fi.Mode())
	}
}

func TestPutRejects(t *testing.T) {
	content := []byte("#!/bin/sh\necho hello\n")
	hash := sum(content)
	size := int64(len(content))
	flipped := bytes.Clone(content)
	flipped[3] ^= 1
	for _, tt := range []struct {
		name string
		hash string
		size int64
		r    io.Reader
		want error  // errors.Is, or
		msg  string // in the message
	}{
		{name: "corrupted byte", hash: hash, size: size, r: bytes.NewReader(flipped), want: ErrMismatch},
		{name: "truncated", hash: hash, size: size, r: bytes.NewReader(content[:10]), msg: "content ended after 10 of 21 bytes"},
		{name: "size too small", hash: hash, size: size - 1, r: bytes.NewReader(content), want: ErrMismatch},
		{name: "empty", hash: hash, size: size, r: strings.NewReader(""), msg: "content ended after 0 of"},
		{name: "bad size", hash: hash, size: -1, r: bytes.NewReader(content), msg: "bad size -1"},
		{name: "stream error", hash: hash, size: size, r: io.MultiReader(bytes.NewReader(content[:5]), iotest.ErrReader(io.ErrUnexpectedEOF)), want: io.ErrUnexpectedEOF},
		{name: "short hash", hash: hash[:63], size: size, r: bytes.NewReader(content), want: ErrBadHash},
		{name: "upper case", hash: strings.ToUpper(hash), size: size, r: bytes.NewReader(content), want: ErrBadHash},
		{name: "path in hash", hash: "../" + hash[3:], size: size, r: bytes.NewReader(content), want: ErrBadHash},
		{name: "empty hash", hash: "", size: size, r: bytes.NewReader(content), want: ErrBadHash},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := open(t)
			err := c.Put(tt.hash, tt.size, tt.r)
			if tt.want != nil && !errors.Is(err, tt.want) || tt.msg != "" && (err == nil || !strings.Contains(err.Error(), tt.msg)) {
				t.Errorf("Put = %v; want error %v %q", err, tt.want, tt.msg)
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

// TestPutStream: Put reads exactly its size from a stream carrying more,
// and a second Put of stored content still consumes its bytes.
func TestPutStream(t *testing.T) {
	c := open(t)
	a, b := []byte("first file"), []byte("second")
	stream := bytes.NewReader(slices.Concat(a, a, b))
	for _, f := range [][]byte{a, a, b} {
		if err := c.Put(sum(f), int64(len(f)), stream); err != nil {
			t.Fatalf("Put %q: %v", f, err)
		}
	}
	if stream.Len() != 0 || !c.Has(sum(a)) || !c.Has(sum(b)) {
		t.Errorf("after three Puts: %d bytes left, Has = %v %v; want 0, true true", stream.Len(), c.Has(sum(a)), c.Has(sum(b)))
	}
	if err := c.Put(sum(a), int64(len(a)), strings.NewReader("fir")); err == nil {
		t.Error("a Put of stored content from a short stream: no error")
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
	put(t, c, content)
	if got, err := c.Path(sum(content)); got != filepath.Join(c.Dir(), sum(content)) || err != nil {
		t.Errorf("Path = %q, %v; want the stored file", got, err)
	}
}

// put stores content and returns its hash.
func put(t *testing.T, c *Cache, content []byte) string {
	t.Helper()
	h := sum(content)
	if err := c.Put(h, int64(len(content)), bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	return h
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
	hash := put(t, c, content)
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
	put(t, c, content)
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
	put(t, c, content)
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
		wantDir              bool   // left alone
	}{
		{name: "/lib64", target: "usr/lib64"},
		{name: "/lib64", target: "usr/lib64"}, // again: left alone
		{name: "/usr/lib64/ld-linux-x86-64.so.2", target: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
		{name: "/lib/libz.so.1", target: "libz.so.1.2.13", before: "file"},
		{name: "/lib/libm.so.6", target: "libm-2.36.so", before: "link"},
		{name: "/lib/real", target: "usr/lib", before: "dir", wantDir: true},
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
		if err := c.Symlink(tt.target, p); err != nil {
			t.Fatalf("Symlink(%s): %v", tt.name, err)
		}
		if tt.wantDir {
			if fi, err := os.Lstat(filepath.Join(p, "x")); err != nil || !fi.IsDir() {
				t.Errorf("Symlink(%s) over a directory: %v, %v; want the directory left alone", tt.name, fi, err)
			}
			continue
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
