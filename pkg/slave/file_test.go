package slave

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// entry is one member of a test archive.
type entry struct {
	name, body string
	dir        bool
	link       string
	mode       int64
	mtime      time.Time
	short      bool // cut the stream inside this file's content
}

func archive(t *testing.T, es ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: e.mtime, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.ModTime.IsZero() {
			h.ModTime = time.Now()
		}
		switch {
		case e.dir:
			h.Typeflag, h.Size = tar.TypeDir, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		if e.short {
			h.Size = 1 << 20
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
		if e.short {
			tw.Flush()
			return b.Bytes()
		}
	}
	tw.Close()
	return b.Bytes()
}

func (s *conn) put(t *testing.T, f wire.File, tarball []byte) wire.Result {
	t.Helper()
	f.Node = testNode
	st := s.open(t, wire.Header{Op: wire.OpPut, File: &f})
	defer st.Close()
	go func() {
		st.Write(tarball)
		st.Close()
	}()
	var r wire.Result
	if err := wire.Read(st, &r); err != nil {
		t.Fatalf("put %s: %v", f.Path, err)
	}
	return r
}

// get returns the archive's entries as name → body (directories "/").
func (s *conn) get(t *testing.T, f wire.File) (wire.Result, map[string]string) {
	t.Helper()
	f.Node = testNode
	st := s.open(t, wire.Header{Op: wire.OpGet, File: &f})
	defer st.Close()
	var r wire.Result
	if err := wire.Read(st, &r); err != nil {
		t.Fatalf("get %s: %v", f.Path, err)
	}
	if r.Err != "" {
		return r, nil
	}
	got := map[string]string{}
	tr := tar.NewReader(st)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("get %s: %v", f.Path, err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			got[h.Name] = "/"
		case tar.TypeSymlink:
			got[h.Name] = "-> " + h.Linkname
		default:
			b, _ := io.ReadAll(tr)
			got[h.Name] = string(b)
		}
	}
	return r, got
}

func TestPutGet(t *testing.T) {
	m := newMaster(t, steady)
	root := startSlave(t, m)
	s := m.next(t)
	me := wire.Cred{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(root, "d"), 0o755))
	must(os.WriteFile(filepath.Join(root, "old"), []byte("old content"), 0o644))
	bin := bytes.Repeat([]byte{0, 1, 2, 255, '\n'}, 100000)
	then := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

	tests := []struct {
		name    string
		f       wire.File
		tar     []byte
		wantErr string            // substring; "" = success
		want    map[string]string // path under root → content ("/" for a directory)
	}{
		{name: "file to a new name", f: wire.File{Path: "/f.bin"}, tar: archive(t, entry{name: "src.bin", body: string(bin)}),
			want: map[string]string{"f.bin": string(bin)}},
		{name: "file into a directory", f: wire.File{Path: "/d"}, tar: archive(t, entry{name: "a.txt", body: "A"}),
			want: map[string]string{"d/a.txt": "A"}},
		{name: "replace a file", f: wire.File{Path: "/old"}, tar: archive(t, entry{name: "x", body: "new content"}),
			want: map[string]string{"old": "new content"}},
		{name: "tree to a new name", f: wire.File{Path: "/tree", Recursive: true},
			tar: archive(t, entry{name: "src/", dir: true}, entry{name: "src/a", body: "a"},
				entry{name: "src/sub/", dir: true, mode: 0o555}, entry{name: "src/sub/b", body: "b"},
				entry{name: "src/l", link: "a"}),
			want: map[string]string{"tree/a": "a", "tree/sub/b": "b", "tree/sub": "/", "tree/l": "-> a"}},
		{name: "tree into a directory", f: wire.File{Path: "/d", Recursive: true},
			tar:  archive(t, entry{name: "src/", dir: true}, entry{name: "src/c", body: "c"}),
			want: map[string]string{"d/src/c": "c"}},
		{name: "directory needs recursive", f: wire.File{Path: "/d2"}, tar: archive(t, entry{name: "src/", dir: true}),
			wantErr: "node 3: src: is a directory (use -r)"},
		{name: "parent must exist", f: wire.File{Path: "/nope/x"}, tar: archive(t, entry{name: "x", body: "x"}),
			wantErr: "node 3: /nope/x: no such file or directory"},
		{name: "escaping names refused", f: wire.File{Path: "/d"}, tar: archive(t, entry{name: "../evil", body: "x"}),
			wantErr: `archive entry "../evil": name has a .. element`},
		{name: "cut short keeps the old file", f: wire.File{Path: "/old"},
			tar: archive(t, entry{name: "x", body: "partial", short: true}), wantErr: "node 3: /old: archive truncated",
			want: map[string]string{"old": "new content"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.Cred = me
			res := s.put(t, tt.f, tt.tar)
			if tt.wantErr == "" && res.Err != "" || !strings.Contains(failed(res), tt.wantErr) {
				t.Fatalf("put: got err %q, want %q", failed(res), tt.wantErr)
			}
			for p, want := range tt.want {
				if got := read(t, filepath.Join(root, p)); got != want {
					t.Errorf("%s: got %q, want %q", p, got, want)
				}
			}
		})
	}
	if fi, err := os.Stat(filepath.Join(root, "tree/sub")); err != nil || fi.Mode().Perm() != 0o555 {
		t.Errorf("tree/sub: got %v, %v; want mode 0555 applied after its entries", fi.Mode(), err)
	}
	// No temporary file was left anywhere.
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if strings.HasPrefix(d.Name(), ".beo-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})

	t.Run("preserve", func(t *testing.T) {
		res := s.put(t, wire.File{Path: "/p", Preserve: true, Cred: me},
			archive(t, entry{name: "p", body: "p", mode: 0o4751, mtime: then}))
		if res.Err != "" {
			t.Fatal(res.Err)
		}
		fi, err := os.Stat(filepath.Join(root, "p"))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fi.Mode(), fs.FileMode(0o751)|fs.ModeSetuid; got != want {
			t.Errorf("mode: got %v, want %v", got, want)
		}
		if !fi.ModTime().Equal(then) {
			t.Errorf("mtime: got %v, want %v", fi.ModTime(), then)
		}
		res = s.put(t, wire.File{Path: "/np", Cred: me}, archive(t, entry{name: "np", body: "np", mode: 0o4751, mtime: then}))
		fi, _ = os.Stat(filepath.Join(root, "np"))
		if res.Err != "" || fi.Mode() != 0o751 || fi.ModTime().Equal(then) {
			t.Errorf("without preserve: got %v %v %q, want mode 0751 and mtime now", fi.Mode(), fi.ModTime(), res.Err)
		}
	})

	gets := []struct {
		name    string
		f       wire.File
		wantErr string
		want    map[string]string
	}{
		{name: "file", f: wire.File{Path: "/f.bin"}, want: map[string]string{"f.bin": string(bin)}},
		{name: "tree", f: wire.File{Path: "/tree", Recursive: true}, want: map[string]string{
			"tree/": "/", "tree/a": "a", "tree/l": "-> a", "tree/sub/": "/", "tree/sub/b": "b"}},
		{name: "directory needs recursive", f: wire.File{Path: "/tree"}, wantErr: "node 3: /tree: is a directory (use -r)"},
		{name: "missing", f: wire.File{Path: "/missing"}, wantErr: "node 3: /missing: no such file or directory"},
	}
	for _, tt := range gets {
		t.Run("get "+tt.name, func(t *testing.T) {
			tt.f.Cred = me
			res, got := s.get(t, tt.f)
			if tt.wantErr == "" && res.Err != "" || !strings.Contains(failed(res), tt.wantErr) {
				t.Fatalf("get: got err %q, want %q", failed(res), tt.wantErr)
			}
			if tt.wantErr != "" {
				return
			}
			if len(got) != len(tt.want) {
				t.Errorf("entries: got %d %v, want %d", len(got), keys(got), len(tt.want))
			}
			for n, w := range tt.want {
				if got[n] != w {
					t.Errorf("%s: got %.40q, want %.40q", n, got[n], w)
				}
			}
		})
	}
}

func TestPutGetAsCaller(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: acting as another user")
	}
	m := newMaster(t, steady)
	root := startSlave(t, m)
	s := m.next(t)
	for _, d := range []string{filepath.Dir(root), root} {
		os.Chmod(d, 0o755)
	}
	os.Mkdir(filepath.Join(root, "pub"), 0o777)
	os.Chmod(filepath.Join(root, "pub"), 0o777)
	os.Mkdir(filepath.Join(root, "priv"), 0o700)
	os.WriteFile(filepath.Join(root, "priv/secret"), []byte("s"), 0o600)
	nobody := wire.Cred{UID: 65534, GID: 65534}

	if res := s.put(t, wire.File{Path: "/pub/n", Cred: nobody}, archive(t, entry{name: "n", body: "n"})); res.Err != "" {
		t.Fatalf("put as nobody in a public dir: %s", res.Err)
	}
	fi, _ := os.Stat(filepath.Join(root, "pub/n"))
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("owner: got %d:%d, want 65534:65534", st.Uid, st.Gid)
	}
	res := s.put(t, wire.File{Path: "/priv/n", Cred: nobody}, archive(t, entry{name: "n", body: "n"}))
	if !strings.Contains(res.Err, "permission denied") {
		t.Errorf("put as nobody in a root-only dir: got %q, want permission denied", res.Err)
	}
	if res, _ := s.get(t, wire.File{Path: "/priv/secret", Cred: nobody}); !strings.Contains(res.Err, "permission denied") {
		t.Errorf("get as nobody of a root-only file: got %q, want permission denied", res.Err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		return "error: " + err.Error()
	}
	switch {
	case fi.IsDir():
		return "/"
	case fi.Mode()&fs.ModeSymlink != 0:
		l, _ := os.Readlink(p)
		return "-> " + l
	}
	b, _ := os.ReadFile(p)
	return string(b)
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
