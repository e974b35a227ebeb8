package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
)

// TestBpcp: -p, -r, several sources, node→node, failures naming the file
// and the node.
func TestBpcp(t *testing.T) {
	c := start(t, 2)
	node := func(n int, p string) string { return filepath.Join(c.Dir, "nodes", string(rune('0'+n)), p) }
	src := t.TempDir()
	tree := filepath.Join(src, "tree")
	for _, f := range []struct {
		path, data string
		mode       os.FileMode
	}{{"tree/a", "A", 0o640}, {"tree/sub/b", "B", 0o700}, {"one", "one", 0o604}} {
		p := filepath.Join(src, f.path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("a", filepath.Join(tree, "link"))
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	os.Chtimes(filepath.Join(src, "one"), old, old)

	// -p keeps mode and mtime; without it, mode masked by 0777 and mtime now.
	if r := run(t, c, nil, "bpcp", "-p", filepath.Join(src, "one"), "0:/kept"); r.code != 0 {
		t.Fatalf("bpcp -p: %+v", r)
	}
	if fi, err := os.Stat(node(0, "kept")); err != nil || fi.Mode().Perm() != 0o604 || !fi.ModTime().Equal(old) {
		t.Errorf("bpcp -p: got %v %v, want mode 0604 mtime %v", fi.Mode(), fi.ModTime(), old)
	}
	if r := run(t, c, nil, "bpcp", filepath.Join(src, "one"), "0:/plain"); r.code != 0 {
		t.Fatalf("bpcp: %+v", r)
	}
	if fi, err := os.Stat(node(0, "plain")); err != nil || fi.ModTime().Equal(old) {
		t.Errorf("bpcp without -p: mtime %v, want now", fi.ModTime())
	}
	// -r: a tree, then node→node, then back; directories need -r.
	if r := run(t, c, nil, "bpcp", tree, "0:/tree"); r.code == 0 || !strings.Contains(r.err, "tree") {
		t.Errorf("directory without -r: got %+v, want an error naming it", r)
	}
	if r := run(t, c, nil, "bpcp", "-r", tree, "0:/tree"); r.code != 0 {
		t.Fatalf("bpcp -r: %+v", r)
	}
	if r := run(t, c, nil, "bpcp", "-r", "0:/tree", "1:/"); r.code != 0 {
		t.Fatalf("bpcp -r node to node: %+v", r)
	}
	back := t.TempDir()
	if r := run(t, c, nil, "bpcp", "-r", "1:/tree", back); r.code != 0 {
		t.Fatalf("bpcp -r back: %+v", r)
	}
	for p, want := range map[string]string{"tree/a": "A", "tree/sub/b": "B"} {
		if b, err := os.ReadFile(filepath.Join(back, p)); string(b) != want {
			t.Errorf("%s after the round trip: got %q, %v", p, b, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(back, "tree/link")); l != "a" {
		t.Errorf("symlink after the round trip: got %q, %v", l, err)
	}
	// Several sources into a directory on a node.
	os.MkdirAll(node(1, "many"), 0o755)
	if r := run(t, c, nil, "bpcp", filepath.Join(src, "one"), "0:/kept", "1:/many"); r.code != 0 {
		t.Fatalf("several sources: %+v", r)
	}
	for _, f := range []string{"one", "kept"} {
		if _, err := os.Stat(node(1, "many/"+f)); err != nil {
			t.Errorf("several sources: %v", err)
		}
	}
	// Failures name the file and the node.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"1:/missing", back}, []string{"node 1", "/missing"}},
		{[]string{filepath.Join(src, "one"), "1:/no/such/dir/x"}, []string{"node 1", "/no/such/dir"}},
		{[]string{filepath.Join(src, "absent"), "1:/x"}, []string{"absent"}},
		{[]string{filepath.Join(src, "one"), "9:/x"}, []string{"9"}},
	} {
		r := run(t, c, nil, "bpcp", tc.args...)
		for _, w := range tc.want {
			if r.code == 0 || !strings.Contains(r.err, w) {
				t.Errorf("bpcp %v: got %+v, want an error containing %q", tc.args, r, w)
			}
		}
	}
}

// TestBpcpAtomic: a file being replaced is always the old one or the whole
// new one, and an interrupted copy leaves the old one and no temporary.
func TestBpcpAtomic(t *testing.T) {
	c := start(t, 1)
	target := filepath.Join(c.Dir, "nodes", "0", "big")
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "big")
	data := make([]byte, 96<<20)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cp := exec.CommandContext(ctx, "bpcp", src, "0:/big")
	cp.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
	if err := cp.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cp.Wait() }()
	seen := map[int64]bool{}
	for waiting := true; waiting; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("bpcp: %v", err)
			}
			waiting = false
		default:
			if fi, err := os.Stat(target); err == nil {
				seen[fi.Size()] = true
			} else {
				t.Errorf("target vanished during the copy: %v", err)
			}
		}
	}
	for size := range seen {
		if size != 3 && size != int64(len(data)) {
			t.Errorf("saw the target at %d bytes: neither the old (3) nor the new (%d) file", size, len(data))
		}
	}
	if b, _ := os.ReadFile(target); !bytes.Equal(b, data) {
		t.Errorf("target after the copy: %d bytes, want the new %d", len(b), len(data))
	}

	// Killed mid-copy (once its temporary exists on the node): the old file
	// stays, and the temporary goes.
	os.WriteFile(target, []byte("old"), 0o644)
	huge := filepath.Join(t.TempDir(), "huge")
	if err := os.Truncate(huge, 0); err != nil {
		f, _ := os.Create(huge)
		f.Close()
	}
	os.Truncate(huge, 4<<30) // sparse: 4 GiB to read, none to store here
	kill := exec.CommandContext(ctx, "bpcp", huge, "0:/big")
	kill.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
	if err := kill.Start(); err != nil {
		t.Fatal(err)
	}
	temps := func() int {
		n := 0
		ents, _ := os.ReadDir(filepath.Dir(target))
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".beo-big") {
				n++
			}
		}
		return n
	}
	waitFor(t, "a temporary on the node", 20*time.Second, func() bool { return temps() > 0 })
	kill.Process.Kill()
	kill.Wait()
	waitFor(t, "no temporary left on the node", 10*time.Second, func() bool { return temps() == 0 })
	if b, _ := os.ReadFile(target); string(b) != "old" {
		t.Errorf("after an interrupted copy: got %d bytes, want the old file", len(b))
	}
}
