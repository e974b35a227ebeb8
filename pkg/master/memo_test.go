package master

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// testProgram copies /bin/true into a temp dir, so the test may change it.
func testProgram(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip("no /bin/true:", err)
	}
	p := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func me() caller {
	return caller{pid: os.Getpid(), cred: wire.Cred{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}}
}

func TestClosureMemo(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	m, err := New(Config{Clock: func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	prog := testProgram(t)
	// Hash calls that missed the hasher's memory = closures walked.
	walks := func() uint64 { h, mi := m.hasher.Stats(); return h + mi }
	memo := &closureMemo{}
	resolve := func() error {
		p, err := m.resolve(context.Background(), me(), memo, prog)
		if err == nil && (len(p.files) == 0 || len(p.reals) == 0) {
			t.Fatalf("resolve: empty closure")
		}
		return err
	}
	if err := resolve(); err != nil {
		t.Fatal(err)
	}
	per := walks()
	if per == 0 {
		t.Fatal("first resolve hashed nothing")
	}
	steps := []struct {
		name    string
		change  func()
		walked  bool
		wantErr bool
	}{
		{"unchanged", func() {}, false, false},
		{"chmod", func() { os.Chmod(prog, 0o750) }, true, false},
		{"unchanged again", func() {}, false, false},
		{"ttl", func() { now.Add(int64(memoTTL + time.Second)) }, true, false},
		{"replaced", func() {
			b, _ := os.ReadFile(prog)
			tmp := prog + ".new"
			os.WriteFile(tmp, append(b, 0), 0o755)
			os.Rename(tmp, prog)
		}, true, false},
		{"not executable", func() { os.Chmod(prog, 0o644) }, true, true},
		{"executable again", func() { os.Chmod(prog, 0o755) }, true, false},
	}
	for _, s := range steps {
		before := walks()
		s.change()
		err := resolve()
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: got err %v, want error %v", s.name, err, s.wantErr)
		}
		if err != nil {
			memo.mu.Lock()
			kept := memo.m[prog] != nil
			memo.mu.Unlock()
			if kept {
				t.Errorf("%s: the failure was remembered", s.name)
			}
			continue
		}
		if got := walks() != before; got != s.walked {
			t.Errorf("%s: walked again %v, want %v", s.name, got, s.walked)
		}
	}
}

func TestClosureMemoConcurrent(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	prog := testProgram(t)
	memo := &closureMemo{}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := m.resolve(context.Background(), me(), memo, prog)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	h, mi := m.hasher.Stats()
	fresh, err := (&Master{hasher: m.hasher, ldcache: m.ldcache}).closure(prog)
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, f := range fresh.files {
		if f.Target == "" {
			files++
		}
	}
	if got := h + mi; got != uint64(files) {
		t.Errorf("64 concurrent resolves hashed %d times, want %d (one walk)", got, files)
	}
}

func TestBlobs(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) (string, string) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		return p, hex.EncodeToString(s[:])
	}
	var c blobs
	small, sh := write("small", []byte("hello"))
	if b, ok, err := c.get(small, sh); err != nil || !ok || string(b) != "hello" {
		t.Fatalf("small: got %q, %v, %v", b, ok, err)
	}
	os.WriteFile(small, []byte("HELLO"), 0o644) // same hash asked: memory answers
	if b, _, _ := c.get(small, sh); string(b) != "hello" {
		t.Errorf("cached: got %q, want the content of the hash", b)
	}
	_, other := write("other", []byte("other"))
	if _, _, err := c.get(small, other); err == nil {
		t.Error("content not matching its hash: no error")
	}
	if _, _, err := c.get(small, other); err == nil {
		t.Error("a failed load was remembered as good")
	}
	big, bh := write("big", make([]byte, blobMax+1))
	if b, ok, err := c.get(big, bh); err != nil || ok || b != nil {
		t.Errorf("big: got %d bytes, %v, %v; want it streamed instead", len(b), ok, err)
	}
	for i := range blobBudget/blobMax + 2 { // more than the budget holds
		p, h := write("f", append(make([]byte, blobMax-1), byte(i)))
		if _, ok, err := c.get(p, h); err != nil || !ok {
			t.Fatalf("fill %d: %v, %v", i, ok, err)
		}
	}
	if c.size > blobBudget {
		t.Errorf("kept %d bytes, budget %d", c.size, blobBudget)
	}
}
