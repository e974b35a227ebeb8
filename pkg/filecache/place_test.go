package filecache

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPlace(t *testing.T) {
	c := open(t)
	root := t.TempDir()
	prog, lib := put(t, c, []byte("program")), put(t, c, []byte("library"))
	os.MkdirAll(filepath.Join(root, "realdir"), 0o755)
	at := func(p string) string { return filepath.Join(root, p) }
	refs := []Ref{
		{Path: at("/lib64"), Target: "usr/lib64"},          // a link listed first
		{Path: at("/lib64/ld.so"), Hash: lib, Mode: 0o755}, // placed through it
		{Path: at("/bin/prog"), Hash: prog, Mode: 0o755},   // linked to the stored file
		{Path: at("/lib/libx.so"), Hash: lib, Mode: 0o644}, // same content, other mode: its own inode
		{Path: at("/lib32/libx.so"), Hash: lib, Mode: 0o644},
		{Path: at("/realdir"), Target: "elsewhere"}, // a directory stays
		{Path: at("/bin/alias"), Target: "prog"},
	}
	for round := range 2 { // the second round finds everything in place
		if err := c.Place(refs); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	for _, tt := range []struct {
		path, want string
		mode       os.FileMode
		sameAs     string // a path sharing the inode
	}{
		{"lib64/ld.so", "library", 0o755, filepath.Join(c.Dir(), lib)},
		{"bin/prog", "program", 0o755, filepath.Join(c.Dir(), prog)},
		{"lib/libx.so", "library", 0o644, at("lib32/libx.so")},
		{"bin/alias", "program", 0o755, at("bin/prog")},
	} {
		p := at(tt.path)
		b, err := os.ReadFile(p)
		fi, _ := os.Stat(p)
		if err != nil || string(b) != tt.want || fi.Mode().Perm() != tt.mode {
			t.Errorf("%s: got %q %v %v, want %q %v", tt.path, b, fi.Mode(), err, tt.want, tt.mode)
			continue
		}
		if ofi, _ := os.Stat(tt.sameAs); !os.SameFile(fi, ofi) {
			t.Errorf("%s: not the same inode as %s", tt.path, tt.sameAs)
		}
	}
	if fi, err := os.Lstat(at("realdir")); err != nil || !fi.IsDir() {
		t.Errorf("realdir: got %v, %v; want the directory kept", fi.Mode(), err)
	}
	if fi, err := os.Lstat(at("lib64")); err != nil || !fi.IsDir() {
		t.Errorf("lib64: got %v, %v; want a directory (files are placed first)", fi.Mode(), err)
	}
}

// TestPlaceWarm: a closure placed before, unchanged since, is checked at
// its paths only — not in the cache, not in their directories — so it
// places even with the cache's files gone.
func TestPlaceWarm(t *testing.T) {
	c := open(t)
	root := t.TempDir()
	h := put(t, c, []byte("program"))
	refs := []Ref{{Path: filepath.Join(root, "bin/prog"), Hash: h, Mode: 0o755}, {Path: filepath.Join(root, "bin/alias"), Target: "prog"}}
	if err := c.Place(refs); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(c.Dir(), c.Dir()+".gone"); err != nil {
		t.Fatal(err)
	}
	if err := c.Place(refs); err != nil {
		t.Errorf("warm Place looked past the paths: %v", err)
	}
}

// TestPlaceNoticesChanges: a placed file or link that was replaced,
// chmodded or rewritten since, or is now wanted with another mode, is
// put back on the next run, though the Cache remembers what it left.
func TestPlaceNoticesChanges(t *testing.T) {
	c := open(t)
	root := t.TempDir()
	const content = "program"
	h := put(t, c, []byte(content))
	prog, alias := filepath.Join(root, "bin/prog"), filepath.Join(root, "bin/alias")
	refs := []Ref{{Path: prog, Hash: h, Mode: 0o755}, {Path: alias, Target: "prog"}}
	check := func(what string, mode os.FileMode) {
		t.Helper()
		refs[0].Mode = mode
		if err := c.Place(refs); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		b, err := os.ReadFile(prog)
		fi, _ := os.Lstat(prog)
		if err != nil || string(b) != content || fi.Mode() != mode {
			t.Errorf("%s: bin/prog is %q %v %v, want %q %v", what, b, fi.Mode(), err, content, mode)
		}
		if tgt, err := os.Readlink(alias); err != nil || tgt != "prog" {
			t.Errorf("%s: bin/alias -> %q, %v; want -> prog", what, tgt, err)
		}
	}
	check("first run", 0o755)
	check("second run", 0o755)
	os.Remove(prog)
	os.WriteFile(prog, []byte("PROGRAM"), 0o755) // same size, another file
	check("replaced", 0o755)
	os.Chmod(prog, 0o700)
	check("chmodded", 0o755)
	check("wanted with another mode", 0o750)
	os.Remove(alias)
	os.Symlink("elsewhere", alias)
	check("link replaced", 0o750)
}

// TestPlaceRefusesLinks: a directory on the way to a placed path that is
// a symbolic link (a user's /tmp/u on a node, made a link to /etc) is not
// followed: nothing is written where it points, for a file or a link.
// The root given to PlaceUnder may itself be reached through a link.
func TestPlaceRefusesLinks(t *testing.T) {
	c := open(t)
	base := t.TempDir()
	root := filepath.Join(base, "root")
	etc := filepath.Join(root, "etc")
	os.MkdirAll(etc, 0o755)
	os.MkdirAll(filepath.Join(root, "tmp"), 0o777)
	if err := os.Symlink(etc, filepath.Join(root, "tmp", "u")); err != nil {
		t.Fatal(err)
	}
	prog := put(t, c, []byte("#!/bin/sh\n"))
	for _, ref := range []Ref{
		{Path: filepath.Join(root, "tmp/u/ld.so.preload"), Hash: prog, Mode: 0o755},
		{Path: filepath.Join(root, "tmp/u/sub/x"), Hash: prog, Mode: 0o755},
		{Path: filepath.Join(root, "tmp/u/link"), Target: "/tmp/p.so"},
	} {
		if err := c.PlaceUnder(root, []Ref{ref}); err == nil {
			t.Errorf("%s: placed through a link", ref.Path)
		}
	}
	if ents, _ := os.ReadDir(etc); len(ents) != 0 {
		t.Errorf("written through the link: %v", ents)
	}
	// A root whose own path holds a link works.
	alias := filepath.Join(base, "alias")
	if err := os.Symlink(root, alias); err != nil {
		t.Fatal(err)
	}
	if err := c.PlaceUnder(alias, []Ref{{Path: filepath.Join(alias, "bin/prog"), Hash: prog, Mode: 0o755}}); err != nil {
		t.Fatalf("under a root reached through a link: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "bin/prog")); err != nil {
		t.Error(err)
	}
}

// TestPlaceNeverWritable: a file asked for with mode 0777 is placed
// without group and other write bits, so the stored content it shares
// with every other placement cannot be changed through it.
func TestPlaceNeverWritable(t *testing.T) {
	c := open(t)
	root := t.TempDir()
	h := put(t, c, []byte("#!/bin/sh\necho id\n"))
	p := filepath.Join(root, "tmp/u/id")
	if err := c.Place([]Ref{{Path: p, Hash: h, Mode: 0o777}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{p, filepath.Join(c.Dir(), h)} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o022 != 0 {
			t.Errorf("%s: mode %v, writable by group or others", f, fi.Mode().Perm())
		}
	}
}
