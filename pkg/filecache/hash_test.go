package filecache

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestHash(t *testing.T) {
	p := filepath.Join(t.TempDir(), "abc")
	os.WriteFile(p, []byte("abc"), 0o644)
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got, err := Hash(p); got != want || err != nil {
		t.Errorf("Hash = %q, %v; want %q", got, err, want)
	}
	var h Hasher
	if got, err := h.Hash(p); got != want || err != nil {
		t.Errorf("Hasher.Hash = %q, %v; want %q", got, err, want)
	}
	if _, err := Hash(filepath.Dir(p)); err == nil {
		t.Error("Hash of a directory succeeded")
	}
	if _, err := h.Hash(filepath.Dir(p)); err == nil {
		t.Error("Hasher.Hash of a directory succeeded")
	}
}

// later is a clock well after any file in the test was written, so the
// racy-file rule does not apply.
func later() time.Time { return time.Now().Add(time.Hour) }

func TestHasherMemo(t *testing.T) {
	p := filepath.Join(t.TempDir(), "libc.so.6")
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	write := func(content string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	h := &Hasher{Now: later}
	write("version 1", t0)
	for _, tt := range []struct {
		name     string
		change   func()
		wantHash string // content whose hash is expected
		wantMiss bool
	}{
		{"first time reads", func() {}, "version 1", true},
		{"unchanged is remembered", func() {}, "version 1", false},
		{"same size, new mtime", func() { write("version 2", t0.Add(time.Second)) }, "version 2", true},
		{"remembered again", func() {}, "version 2", false},
		{"new size", func() { write("version 10", t0.Add(time.Second)) }, "version 10", true},
		{"same size, mtime put back: ctime tells", func() { write("version 11", t0.Add(time.Second)) }, "version 11", true},
		{"replaced by rename: new inode", func() {
			tmp := p + ".new"
			os.WriteFile(tmp, []byte("version 12"), 0o644)
			os.Chtimes(tmp, t0.Add(time.Second), t0.Add(time.Second))
			os.Rename(tmp, p)
		}, "version 12", true},
	} {
		tt.change()
		_, missesBefore := h.Stats()
		got, err := h.Hash(p)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if want := sum([]byte(tt.wantHash)); got != want {
			t.Errorf("%s: hash of %q, want hash of %q", tt.name, got, tt.wantHash)
		}
		_, misses := h.Stats()
		if missed := misses > missesBefore; missed != tt.wantMiss {
			t.Errorf("%s: read the file = %v, want %v", tt.name, missed, tt.wantMiss)
		}
	}
}

func TestHasherRacyFileNotRemembered(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fresh")
	os.WriteFile(p, []byte("just written"), 0o644)
	h := &Hasher{} // real clock: the file is less than a second old
	h.Hash(p)
	h.Hash(p)
	if hits, misses := h.Stats(); hits != 0 || misses != 2 {
		t.Errorf("Stats = %d hits, %d misses; want a fresh file read every time", hits, misses)
	}
}

func TestHasherConcurrent(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i := range 4 {
		p := filepath.Join(dir, fmt.Sprint(i))
		os.WriteFile(p, []byte(fmt.Sprint("content ", i)), 0o644)
		files = append(files, p)
	}
	h := &Hasher{Now: later}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				p := files[(g+i)%len(files)]
				got, err := h.Hash(p)
				want, _ := Hash(p)
				if err != nil || got != want {
					t.Errorf("Hash(%s) = %q, %v; want %q", p, got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	if hits, misses := h.Stats(); hits+misses != 16*50 || hits == 0 {
		t.Errorf("Stats = %d hits, %d misses", hits, misses)
	}
}

// TestSum: content in memory gets the name its file would.
func TestSum(t *testing.T) {
	b := []byte("libc, say\n")
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := Hash(p)
	if err != nil || Sum(b) != h {
		t.Errorf("Sum = %s, Hash = %s, %v; want them equal", Sum(b), h, err)
	}
}
