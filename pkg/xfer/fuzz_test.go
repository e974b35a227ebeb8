package xfer

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzUnpack feeds arbitrary streams to Unpack, into an existing directory
// and as a new name, and checks that it never panics, never touches
// anything outside dst, and never leaves a temporary behind.
//
//	go test ./pkg/xfer -run '^$' -fuzz FuzzUnpack -parallel=1 -fuzztime 3m
func FuzzUnpack(f *testing.F) {
	src := f.TempDir()
	mkTree(f, src, sample)
	for _, seed := range []struct {
		srcs []string
		opts Options
	}{
		{[]string{"f.txt"}, Options{}},
		{[]string{"d"}, Options{Recursive: true}},
		{[]string{"f.txt", "d/a.txt"}, Options{Preserve: true}},
	} {
		var b bytes.Buffer
		var srcs []string
		for _, s := range seed.srcs {
			srcs = append(srcs, filepath.Join(src, s))
		}
		if err := Pack(&b, srcs, seed.opts); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes(), seed.opts.Recursive, seed.opts.Preserve, false)
		f.Add(b.Bytes(), seed.opts.Recursive, seed.opts.Preserve, true)
	}
	for _, hs := range [][]tar.Header{
		{reg("../x", "evil")},
		{reg("/tmp/x", "evil")},
		{reg("escape/x", "evil")},
		{reg("abs/x", "evil")},
		{link("l", "../outside"), reg("l/x", "evil")},
		{link("l", "."), dir("l/"), reg("l/x", "x")},
		{dir("escape/"), reg("escape/keep", "evil")},
		{reg("escape", "replaced link")},
		{dir("d/"), reg("d/f", "f"), link("d/l", "f"), reg("d/l", "over link")},
		{reg(strings.Repeat("long/", 40)+"f", "deep")},
		{{Typeflag: tar.TypeLink, Name: "h", Linkname: "file"}},
		{{Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: map[string]string{"comment": "c"}}, reg("f", "f")},
	} {
		a := archive(f, hs...)
		f.Add(a, true, false, false)
		f.Add(a, true, true, true)
		f.Add(a[:len(a)-1024], true, false, false)
	}

	f.Fuzz(func(t *testing.T, data []byte, recursive, preserve, as bool) {
		base := t.TempDir()
		t.Cleanup(func() { unlock(base) })
		outside, dst := filepath.Join(base, "outside"), filepath.Join(base, "dst")
		mkTree(t, outside, tree{"keep": "keep", "sub/": ""})
		mkTree(t, dst, tree{"escape@": "../outside", "abs@": outside, "file": "file", "sub/": ""})
		target := dst
		if as {
			target = filepath.Join(dst, "new")
		}
		Unpack(bytes.NewReader(data), target, Options{Recursive: recursive, Preserve: preserve})

		names, err := os.ReadDir(base)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != 2 || names[0].Name() != "dst" || names[1].Name() != "outside" {
			t.Fatalf("something appeared next to dst: %v", names)
		}
		if fi, err := os.Lstat(dst); err != nil || !fi.IsDir() {
			t.Fatalf("dst replaced: %v %v", fi, err)
		}
		got := readTree(t, outside)
		if len(got) != 2 || got["keep"] != "keep" || got["sub/"] != "" {
			t.Fatalf("outside changed: %v", got)
		}
		if fi, err := os.Stat(filepath.Join(outside, "keep")); err != nil || fi.Mode().Perm() != 0o644 {
			t.Fatalf("outside/keep changed: %v %v", fi, err)
		}
		if !bytes.Contains(data, []byte(".beo-")) {
			unlock(dst)
			for name := range readTree(t, dst) {
				if strings.Contains(name, ".beo-") {
					t.Fatalf("temporary left behind: %s", name)
				}
			}
		}
	})
}

// unlock makes every directory under dir usable again so it can be
// removed, whatever modes an archive gave them.
func unlock(dir string) {
	os.Chmod(dir, 0o700)
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
}
