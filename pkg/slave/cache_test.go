package slave

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestDirCache(t *testing.T) {
	c, err := NewDirCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("content")
	h := hashOf(body)
	tests := []struct {
		name    string
		hash    string
		size    int64
		data    []byte
		wantErr string
	}{
		{"bad hash", "../../etc/passwd", 7, body, "bad hash"},
		{"wrong content", h, 7, []byte("CONTENT"), "content hashes to"},
		{"short", h, 8, body, "content ended after 7 of 8 bytes"},
		{"good", h, 7, body, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Add(tt.hash, tt.size, bytes.NewReader(tt.data))
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("got %v, want %q", err, tt.wantErr)
			}
			if got, want := c.Has(h), tt.wantErr == ""; got != want {
				t.Errorf("Has after: got %v, want %v", got, want)
			}
		})
	}
	ents, _ := os.ReadDir(c.dir)
	if len(ents) != 1 {
		t.Errorf("cache holds %d files, want 1 (no temporaries)", len(ents))
	}
}

func TestPlace(t *testing.T) {
	c, err := NewDirCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	add := func(s string) string {
		h := hashOf([]byte(s))
		if err := c.Add(h, int64(len(s)), strings.NewReader(s)); err != nil {
			t.Fatal(err)
		}
		return h
	}
	prog, lib := add("program"), add("library")
	os.MkdirAll(filepath.Join(root, "realdir"), 0o755)
	pl := &placer{root: root, cache: c, copies: map[string]copied{}}
	files := []fileRef{
		{Path: "/lib64", Target: "usr/lib64"},            // a link listed first
		{Path: "/lib64/ld.so", Hash: lib, Mode: 0o755},   // placed through it
		{Path: "/bin/prog", Hash: prog, Mode: 0o755},     // linked to the object
		{Path: "/lib/libx.so", Hash: lib, Mode: 0o644},   // same content, other mode: copied
		{Path: "/realdir", Target: "elsewhere"},          // a directory stays
		{Path: "/../../escape", Hash: prog, Mode: 0o755}, // stays inside root
		{Path: "/bin/alias", Target: "prog"},
	}
	for round := range 2 { // the second round finds everything in place
		if err := pl.place(files); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	for _, tt := range []struct {
		path, want string
		mode       os.FileMode
		linked     string // hash whose object it must be
	}{
		{"lib64/ld.so", "library", 0o755, lib},
		{"bin/prog", "program", 0o755, prog},
		{"lib/libx.so", "library", 0o644, ""},
		{"escape", "program", 0o755, prog},
		{"bin/alias", "program", 0o755, prog},
	} {
		p := filepath.Join(root, tt.path)
		b, err := os.ReadFile(p)
		fi, _ := os.Stat(p)
		if err != nil || string(b) != tt.want || fi.Mode().Perm() != tt.mode {
			t.Errorf("%s: got %q %v %v, want %q %v", tt.path, b, fi.Mode(), err, tt.want, tt.mode)
			continue
		}
		if tt.linked != "" {
			ofi, _ := os.Stat(c.Path(tt.linked))
			if !os.SameFile(fi, ofi) {
				t.Errorf("%s: not a link to its cache object", tt.path)
			}
		}
	}
	if fi, err := os.Lstat(filepath.Join(root, "realdir")); err != nil || !fi.IsDir() {
		t.Errorf("realdir: got %v, %v; want the directory kept", fi.Mode(), err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "lib64")); err != nil || !fi.IsDir() {
		t.Errorf("lib64: got %v, %v; want a directory (files are placed first)", fi.Mode(), err)
	}
}

// TestPlaceNoticesChanges: a placed file or link that was replaced,
// chmodded or rewritten since is put back on the next run, though the
// placer remembers what it left there.
func TestPlaceNoticesChanges(t *testing.T) {
	c, err := NewDirCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	const content = "program"
	h := hashOf([]byte(content))
	if err := c.Add(h, int64(len(content)), strings.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	pl := &placer{root: root, cache: c, copies: map[string]copied{}}
	files := []fileRef{{Path: "/bin/prog", Hash: h, Mode: 0o755}, {Path: "/bin/alias", Target: "prog"}}
	prog, alias := filepath.Join(root, "bin/prog"), filepath.Join(root, "bin/alias")
	check := func(what string) {
		t.Helper()
		if err := pl.place(files); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		b, err := os.ReadFile(prog)
		fi, _ := os.Lstat(prog)
		if err != nil || string(b) != content || fi.Mode() != 0o755 {
			t.Errorf("%s: bin/prog is %q %v %v, want %q -rwxr-xr-x", what, b, fi.Mode(), err, content)
		}
		if tgt, err := os.Readlink(alias); err != nil || tgt != "prog" {
			t.Errorf("%s: bin/alias -> %q, %v; want -> prog", what, tgt, err)
		}
	}
	check("first run")
	check("second run")
	os.Remove(prog)
	os.WriteFile(prog, []byte("PROGRAM"), 0o755) // same size, another file
	check("replaced")
	os.Chmod(prog, 0o700)
	check("chmodded")
	os.Remove(alias)
	os.Symlink("elsewhere", alias)
	check("link replaced")
}
