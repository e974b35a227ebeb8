package elfdeps

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkClosure is one walk of /usr/bin/true's closure, what the
// master does (as the caller) for every exec a new client connection
// sends: its system calls are most of it.
func BenchmarkClosure(b *testing.B) {
	if _, err := os.Stat("/usr/bin/true"); err != nil {
		b.Skip("no /usr/bin/true")
	}
	cache, err := ReadCache("/")
	if err != nil {
		cache = &Cache{}
	}
	for b.Loop() {
		if _, err := Closure("/", "/usr/bin/true", Options{Cache: cache}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHeadFile: reads through headFile give what the file's own ReadAt
// gives — inside the head, across its end, past the file's end, for a
// file longer and one shorter than the head.
func TestHeadFile(t *testing.T) {
	for _, size := range []int{10, headSize + 100} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i * 7)
		}
		p := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		plain, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		h, err := openFile("/", p)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		for _, r := range []struct{ off, n int }{{0, 4}, {0, 64}, {3, 5}, {8, 4}, {headSize - 2, 4}, {headSize, 50}, {size - 3, 3}, {size - 2, 8}, {size + 5, 1}} {
			want := make([]byte, r.n)
			wn, werr := plain.ReadAt(want, int64(r.off))
			got := make([]byte, r.n)
			gn, gerr := h.ReadAt(got, int64(r.off))
			if gn != wn || !bytes.Equal(got[:gn], want[:wn]) || (gerr == nil) != (werr == nil) {
				t.Errorf("size %d: ReadAt(%d bytes at %d) = %d, %v; the file gives %d, %v", size, r.n, r.off, gn, gerr, wn, werr)
			}
		}
	}
}
