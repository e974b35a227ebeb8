package xfer

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tree describes files under a directory: "name" → content, "name/" →
// directory, "name@" → symlink target.
type tree map[string]string

func mkTree(t testing.TB, dir string, tr tree) {
	t.Helper()
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range tr {
			if !yield(k) {
				return
			}
		}
	}) {
		v := tr[name]
		switch {
		case strings.HasSuffix(name, "/"):
			must(t, os.MkdirAll(filepath.Join(dir, name), 0o755))
		case strings.HasSuffix(name, "@"):
			p := filepath.Join(dir, strings.TrimSuffix(name, "@"))
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.Symlink(v, p))
		default:
			p := filepath.Join(dir, name)
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.WriteFile(p, []byte(v), 0o644))
		}
	}
}

// readTree is the inverse of mkTree.
func readTree(t testing.TB, dir string) tree {
	t.Helper()
	got := tree{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			got[rel+"/"] = ""
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[rel+"@"] = l
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = string(b)
		}
		return nil
	})
	must(t, err)
	return got
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sameTree(t *testing.T, got, want tree) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s: got %q (present %v), want %q", k, g, ok, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected", k)
		}
	}
}

func pack(t *testing.T, srcs []string, opts Options) []byte {
	t.Helper()
	var b bytes.Buffer
	must(t, Pack(&b, srcs, opts))
	return b.Bytes()
}

var sample = tree{
	"d/":          "",
	"d/a.txt":     "alpha\n",
	"d/empty":     "",
	"d/sub/":      "",
	"d/sub/b.txt": strings.Repeat("b", 5000),
	"d/sub/deep/": "",
	"d/link@":     "a.txt",
	"d/abs@":      "/etc/passwd",
	"f.txt":       "file\n",
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		srcs    []string // under src/
		dst     string   // under out/; "" = out itself
		opts    Options
		want    tree // out/ afterwards
		wantErr string
	}{
		{"file into dir", []string{"f.txt"}, "", Options{}, tree{"f.txt": "file\n"}, ""},
		{"file as name", []string{"f.txt"}, "g.txt", Options{}, tree{"g.txt": "file\n"}, ""},
		{"file as dir/", []string{"f.txt"}, "new/", Options{}, tree{}, "not a directory"},
		{"file over file", []string{"f.txt"}, "old", Options{}, tree{"old": "file\n"}, ""},
		{"tree into dir", []string{"d"}, "", Options{Recursive: true}, prefixed("", "d"), ""},
		{"tree as new name", []string{"d"}, "e", Options{Recursive: true}, prefixed("e", "d"), ""},
		{"tree as new name/", []string{"d"}, "e/", Options{Recursive: true}, prefixed("e", "d"), ""},
		{"tree without -r", []string{"d"}, "", Options{}, tree{}, "d: is a directory (use -r)"},
		{"two into dir", []string{"f.txt", "d/a.txt"}, "", Options{}, tree{"f.txt": "file\n", "a.txt": "alpha\n"}, ""},
		{"two as name", []string{"f.txt", "d/a.txt"}, "x", Options{}, tree{}, "x: not a directory"},
		{"tree over file", []string{"d"}, "old", Options{Recursive: true}, tree{"old": "old"}, "cannot overwrite a non-directory with a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			src, out := filepath.Join(base, "src"), filepath.Join(base, "out")
			mkTree(t, src, sample)
			must(t, os.Mkdir(out, 0o755))
			if tt.name == "file over file" || tt.name == "tree over file" {
				must(t, os.WriteFile(filepath.Join(out, "old"), []byte("old"), 0o600))
			}
			var srcs []string
			for _, s := range tt.srcs {
				srcs = append(srcs, filepath.Join(src, s))
			}
			var b bytes.Buffer
			err := Pack(&b, srcs, tt.opts)
			if err == nil {
				dst := out
				if tt.dst != "" {
					dst = filepath.Join(out, tt.dst)
					if strings.HasSuffix(tt.dst, "/") {
						dst += "/"
					}
				}
				err = Unpack(&b, dst, tt.opts)
			}
			if tt.wantErr == "" && err != nil {
				t.Fatalf("got error %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
			if tt.name == "tree over file" {
				return
			}
			sameTree(t, readTree(t, out), tt.want)
		})
	}
}

// prefixed returns sample's entries under from/, renamed under to/ (to ""
// keeps from).
func prefixed(to, from string) tree {
	if to == "" {
		to = from
	}
	out := tree{to + "/": ""}
	for k, v := range sample {
		if rest, ok := strings.CutPrefix(k, from+"/"); ok && rest != "" {
			out[to+"/"+rest] = v
		}
	}
	return out
}

func TestPreserve(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	mkTree(t, src, sample)
	old := time.Date(2004, 12, 17, 1, 38, 0, 0, time.UTC)
	must(t, os.Chmod(filepath.Join(src, "d/a.txt"), 0o751))
	must(t, os.Chtimes(filepath.Join(src, "d/a.txt"), old, old))
	must(t, os.Chmod(filepath.Join(src, "d/sub"), 0o711))
	must(t, os.Chtimes(filepath.Join(src, "d/sub"), old, old))
	data := pack(t, []string{filepath.Join(src, "d")}, Options{Recursive: true})

	for _, preserve := range []bool{false, true} {
		out := filepath.Join(base, "out"+map[bool]string{false: "0", true: "1"}[preserve])
		must(t, os.Mkdir(out, 0o755))
		before := time.Now().Add(-time.Second)
		must(t, Unpack(bytes.NewReader(data), out, Options{Recursive: true, Preserve: preserve}))
		for _, name := range []string{"d/a.txt", "d/sub"} {
			fi, err := os.Stat(filepath.Join(out, name))
			must(t, err)
			if got, want := fi.Mode().Perm(), map[string]fs.FileMode{"d/a.txt": 0o751, "d/sub": 0o711}[name]; got != want {
				t.Errorf("preserve=%v %s: mode got %o, want %o", preserve, name, got, want)
			}
			if preserve && !fi.ModTime().Equal(old) {
				t.Errorf("preserve %s: mtime got %v, want %v", name, fi.ModTime(), old)
			}
			if !preserve && fi.ModTime().Before(before) {
				t.Errorf("no preserve %s: mtime got %v, want now", name, fi.ModTime())
			}
		}
	}
}

// failAfter returns r's first n bytes, then err.
type failAfter struct {
	r   io.Reader
	n   int
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	k, err := f.r.Read(p)
	f.n -= k
	return k, err
}

func TestAtomic(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	mkTree(t, src, tree{"a": strings.Repeat("A", 3000), "b": "bee", "d/": "", "d/c": "sea"})
	two := pack(t, []string{filepath.Join(src, "a"), filepath.Join(src, "b")}, Options{})
	one := pack(t, []string{filepath.Join(src, "a")}, Options{})
	dirTar := pack(t, []string{filepath.Join(src, "d")}, Options{Recursive: true})
	boom := errors.New("connection reset")
	tests := []struct {
		name  string
		data  []byte
		cut   int // bytes delivered before the failure
		err   error
		into  bool
		opts  Options
		isErr error
	}{
		{"mid-file", one, 512 + 1000, boom, false, Options{}, boom},
		{"mid-file EOF", one, 512 + 1000, io.EOF, false, Options{}, ErrTruncated},
		{"after data before marker", one, 512 + 3072, io.EOF, false, Options{}, ErrTruncated},
		{"between entries", two, 512 + 3072, io.EOF, true, Options{}, ErrTruncated},
		{"between entries, error", two, 512 + 3072 + 512 + 512, boom, true, Options{}, boom},
		{"before end marker", two, 512 + 3072 + 512 + 512, io.EOF, true, Options{}, ErrTruncated},
		{"tree cut", dirTar, len(dirTar) - 1024, io.EOF, true, Options{Recursive: true}, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			old := tree{"a": "old a", "b": "old b"}
			mkTree(t, out, old)
			dst := filepath.Join(out, "a")
			if tt.into {
				dst = out
			}
			r := &failAfter{r: bytes.NewReader(tt.data), n: tt.cut, err: tt.err}
			err := Unpack(r, dst, tt.opts)
			if !errors.Is(err, tt.isErr) {
				t.Fatalf("got error %v, want %v", err, tt.isErr)
			}
			sameTree(t, readTree(t, out), old) // no temporary, no new dir, old files intact
		})
	}
	t.Run("complete", func(t *testing.T) {
		out := t.TempDir()
		must(t, Unpack(bytes.NewReader(two), out, Options{}))
		sameTree(t, readTree(t, out), tree{"a": strings.Repeat("A", 3000), "b": "bee"})
	})
}

// TestUnnamedWhileArriving: a file's data has no name in its directory
// while it arrives (O_TMPFILE), so a receiver killed then (SIGKILL: no
// rollback runs) leaves nothing behind; it gets its temporary name only
// once whole, and its own name at the commit.
func TestUnnamedWhileArriving(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	mkTree(t, src, tree{"a": strings.Repeat("A", 300000)})
	data := pack(t, []string{filepath.Join(src, "a")}, Options{})
	out := t.TempDir()
	f, err := os.OpenFile(out, unix.O_TMPFILE|os.O_RDWR, 0o600)
	if err != nil {
		t.Skipf("%s: no O_TMPFILE here (%v): files arrive under their temporary names", out, err)
	}
	f.Close()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Unpack(pr, filepath.Join(out, "a"), Options{}) }()
	pw.Write(data[:512+100000]) // the header and part of the data: returns once Unpack has read it
	if names := readTree(t, out); len(names) != 0 {
		t.Errorf("while the data arrives %s holds %v, want nothing", out, slices.Collect(maps.Keys(names)))
	}
	pw.Write(data[512+100000:])
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sameTree(t, readTree(t, out), tree{"a": strings.Repeat("A", 300000)})
}

// PackFailure: a file that vanishes after Scan ends the stream without its
// end marker, and Unpack refuses the result.
func TestPackFailure(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	mkTree(t, src, tree{"d/": "", "d/a": "a", "d/b": "b"})
	p, err := Scan([]string{filepath.Join(src, "d")}, Options{Recursive: true})
	must(t, err)
	must(t, os.Remove(filepath.Join(src, "d/b")))
	var b bytes.Buffer
	if err := p.Write(&b); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Write: got %v, want not exist", err)
	}
	out := t.TempDir()
	if err := Unpack(&b, out, Options{Recursive: true}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Unpack: got %v, want ErrTruncated", err)
	}
	sameTree(t, readTree(t, out), tree{})
}

// TestSwappedForFifo: a file replaced by a fifo after Scan fails the
// Write at once instead of blocking in open (bpmaster opens users' files).
func TestSwappedForFifo(t *testing.T) {
	src := t.TempDir()
	mkTree(t, src, tree{"a": "a"})
	a := filepath.Join(src, "a")
	p, err := Scan([]string{a}, Options{})
	must(t, err)
	must(t, os.Remove(a))
	must(t, syscall.Mkfifo(a, 0o644))
	done := make(chan error, 1)
	go func() { done <- p.Write(io.Discard) }()
	select {
	case err := <-done:
		if want := a + ": not a regular file"; err == nil || err.Error() != want {
			t.Errorf("Write: got %v, want %q", err, want)
		}
	case <-time.After(5 * time.Second):
		os.WriteFile(a, nil, 0) // a writer: lets the blocked open return
		t.Fatal("Write blocked opening a fifo")
	}
}

func TestScanErrors(t *testing.T) {
	base := t.TempDir()
	mkTree(t, base, tree{"d/": "", "d/x": "x", "e/": "", "e/x": "y"})
	tests := []struct {
		srcs []string
		opts Options
		want string
	}{
		{[]string{"nope"}, Options{}, "nope: no such file or directory"},
		{[]string{"d"}, Options{}, "d: is a directory (use -r)"},
		{[]string{"d/x", "e/x"}, Options{}, "would both land as x"},
		{[]string{"/"}, Options{Recursive: true}, "cannot copy the root directory"},
	}
	for _, tt := range tests {
		var srcs []string
		for _, s := range tt.srcs {
			if !filepath.IsAbs(s) {
				s = filepath.Join(base, s)
			}
			srcs = append(srcs, s)
		}
		var b bytes.Buffer
		err := Pack(&b, srcs, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Pack(%v): got %v, want %q", tt.srcs, err, tt.want)
		}
		if b.Len() != 0 {
			t.Errorf("Pack(%v): wrote %d bytes before failing", tt.srcs, b.Len())
		}
	}
}

// archive builds a tar stream from headers; a Reg header's content is its
// Linkname field (cleared before writing), to keep tables short.
func archive(t testing.TB, hs ...tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hs {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body, h.Linkname = h.Linkname, ""
			h.Size = int64(len(body))
		}
		if h.Mode == 0 && h.Typeflag != tar.TypeXGlobalHeader {
			h.Mode = 0o644
		}
		must(t, tw.WriteHeader(&h))
		if body != "" {
			_, err := tw.Write([]byte(body))
			must(t, err)
		}
	}
	must(t, tw.Close())
	return b.Bytes()
}

func reg(name, body string) tar.Header {
	return tar.Header{Typeflag: tar.TypeReg, Name: name, Linkname: body}
}
func dir(name string) tar.Header { return tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755} }
func link(name, target string) tar.Header {
	return tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target}
}

func TestUnsafe(t *testing.T) {
	tests := []struct {
		name string
		hs   []tar.Header
		want string
	}{
		{"dotdot", []tar.Header{reg("../x", "evil")}, "name has a .. element"},
		{"inner dotdot", []tar.Header{dir("a/"), reg("a/../../x", "evil")}, "name has a .. element"},
		{"absolute", []tar.Header{reg("/tmp/x", "evil")}, "absolute name"},
		{"dot", []tar.Header{dir("./")}, "empty name"},
		{"old link out", []tar.Header{reg("escape/x", "evil")}, "path escapes from parent"},
		{"old abs link out", []tar.Header{reg("abs/x", "evil")}, "escapes"},
		{"new link then through", []tar.Header{link("l", "../outside"), reg("l/x", "evil")}, "file exists"},
		{"hard link", []tar.Header{{Typeflag: tar.TypeLink, Name: "h", Linkname: "/etc/passwd"}}, "hard links"},
		{"too deep", []tar.Header{reg(strings.Repeat("a/", 300)+"f", "deep")}, "too deep"},
		{"dir over old link", []tar.Header{dir("escape/"), reg("escape/x", "evil")}, "escapes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			outside, dst := filepath.Join(base, "outside"), filepath.Join(base, "dst")
			mkTree(t, outside, tree{"keep": "keep"})
			mkTree(t, dst, tree{"escape@": "../outside", "abs@": outside, "file": "file"})
			before := readTree(t, dst)
			err := Unpack(bytes.NewReader(archive(t, tt.hs...)), dst, Options{Recursive: true})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
			sameTree(t, readTree(t, outside), tree{"keep": "keep"})
			sameTree(t, readTree(t, dst), before)
		})
	}
}

func TestUnpackShapes(t *testing.T) {
	tests := []struct {
		name    string
		hs      []tar.Header
		dst     string // under out/
		opts    Options
		want    tree
		wantErr string
	}{
		{"implicit parents", []tar.Header{reg("a/b/c", "c")}, "", Options{Recursive: true},
			tree{"a/": "", "a/b/": "", "a/b/c": "c"}, ""},
		{"implicit top as", []tar.Header{reg("a/b", "b")}, "z", Options{Recursive: true},
			tree{"z/": "", "z/b": "b"}, ""},
		{"nested without -r", []tar.Header{reg("a/b", "b")}, "", Options{}, tree{}, "a: is a directory (use -r)"},
		{"top symlink as", []tar.Header{link("l", "x")}, "z", Options{}, tree{}, "symbolic link"},
		{"symlink into", []tar.Header{link("l", "x")}, "", Options{}, tree{"l@": "x"}, ""},
		{"file over dir", []tar.Header{dir("a/"), reg("a", "x")}, "", Options{Recursive: true},
			tree{}, "cannot overwrite a directory"},
		{"empty as", nil, "z", Options{}, tree{}, "empty archive"},
		{"empty into", nil, "", Options{}, tree{}, ""},
		{"global header skipped", []tar.Header{{Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: map[string]string{"comment": "x"}}, reg("f", "f")},
			"", Options{}, tree{"f": "f"}, ""},
		{"fifo skipped", []tar.Header{{Typeflag: tar.TypeFifo, Name: "p"}, reg("f", "f")}, "", Options{}, tree{"f": "f"}, ""},
		{"dup wins last", []tar.Header{reg("f", "1"), reg("f", "2")}, "", Options{}, tree{"f": "2"}, ""},
		{"dot slash names", []tar.Header{dir("./d/"), reg("./d/f", "f")}, "", Options{Recursive: true}, tree{"d/": "", "d/f": "f"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			dst := filepath.Join(out, tt.dst)
			err := Unpack(bytes.NewReader(archive(t, tt.hs...)), dst, tt.opts)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("got error %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
			sameTree(t, readTree(t, out), tt.want)
		})
	}
}

func TestAppend(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	mkTree(t, src, sample)
	a := pack(t, []string{filepath.Join(src, "f.txt")}, Options{})
	d := pack(t, []string{filepath.Join(src, "d")}, Options{Recursive: true})

	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	must(t, Append(tw, bytes.NewReader(a)))
	must(t, Append(tw, bytes.NewReader(d)))
	must(t, tw.Close())
	out := t.TempDir()
	must(t, Unpack(&b, out, Options{Recursive: true}))
	sameTree(t, readTree(t, out), sample)

	tw = tar.NewWriter(io.Discard)
	if err := Append(tw, bytes.NewReader(d[:len(d)-1024])); !errors.Is(err, ErrTruncated) {
		t.Errorf("Append of a cut stream: got %v, want ErrTruncated", err)
	}
}

func TestTempName(t *testing.T) {
	long := strings.Repeat("n", 255)
	got := tempName("dir/" + long)
	if base := filepath.Base(got); len(base) > 255 || !strings.HasPrefix(got, "dir/.beo-") {
		t.Errorf("tempName: got %q (%d bytes)", got, len(base))
	}
}

func TestErrorsNameTheFile(t *testing.T) {
	out := t.TempDir()
	err := Unpack(bytes.NewReader(archive(t, reg("f", "x"))), filepath.Join(out, "no/such/f"), Options{})
	if err == nil || err.Error() != filepath.Join(out, "no/such/f")+": no such file or directory" {
		t.Errorf("got %v", err)
	}
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("got %v, want ENOENT", err)
	}
}

func TestOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	base := t.TempDir()
	src := filepath.Join(base, "src")
	mkTree(t, src, tree{"d/": "", "d/f": "f", "d/l@": "f"})
	for _, p := range []string{"d", "d/f"} {
		must(t, os.Chown(filepath.Join(src, p), 1234, 5678))
	}
	must(t, os.Lchown(filepath.Join(src, "d/l"), 1234, 5678))
	data := pack(t, []string{filepath.Join(src, "d")}, Options{Recursive: true})
	for _, preserve := range []bool{false, true} {
		out := t.TempDir()
		must(t, Unpack(bytes.NewReader(data), out, Options{Recursive: true, Preserve: preserve}))
		for _, p := range []string{"d", "d/f", "d/l"} {
			fi, err := os.Lstat(filepath.Join(out, p))
			must(t, err)
			st := fi.Sys().(*syscall.Stat_t)
			want := [2]uint32{0, 0}
			if preserve {
				want = [2]uint32{1234, 5678}
			}
			if got := [2]uint32{st.Uid, st.Gid}; got != want {
				t.Errorf("preserve=%v %s: owner got %v, want %v", preserve, p, got, want)
			}
		}
	}
}

func TestChownRefused(t *testing.T) {
	var calls [][2]int
	refuse := func(uid, gid int) error {
		calls = append(calls, [2]int{uid, gid})
		return &fs.PathError{Op: "chown", Path: "x", Err: syscall.EPERM}
	}
	if err := chown(refuse, &tar.Header{Uid: 1, Gid: 2}); err != nil {
		t.Errorf("got %v, want a refusal ignored", err)
	}
	if want := [][2]int{{1, 2}, {-1, 2}}; !slices.Equal(calls, want) {
		t.Errorf("calls: got %v, want %v", calls, want)
	}
	broken := func(uid, gid int) error { return syscall.EIO }
	if err := chown(broken, &tar.Header{}); !errors.Is(err, syscall.EIO) {
		t.Errorf("got %v, want EIO", err)
	}
}

func TestDstSymlink(t *testing.T) {
	out := t.TempDir()
	mkTree(t, out, tree{"real/": "", "real/f": "old", "todir@": "real", "tofile@": "real/f"})
	must(t, Unpack(bytes.NewReader(archive(t, reg("g", "g"))), filepath.Join(out, "todir"), Options{}))
	must(t, Unpack(bytes.NewReader(archive(t, reg("x", "new"))), filepath.Join(out, "tofile"), Options{}))
	sameTree(t, readTree(t, out), tree{"real/": "", "real/f": "new", "real/g": "g", "todir@": "real", "tofile@": "real/f"})
}

// TestReplaceLarge: a large file replaced by a copy is gone once the copy
// lands (its descriptor, held to free it in the background, is closed),
// and the new content is in place.
func TestReplaceLarge(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mkTree(t, src, tree{"big": "new content"})
	old := filepath.Join(dst, "big")
	if err := os.WriteFile(old, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(old, holdFrom+1); err != nil { // sparse, but large
		t.Fatal(err)
	}
	fds := func() int { e, _ := os.ReadDir("/proc/self/fd"); return len(e) }
	before := fds()
	var buf bytes.Buffer
	if err := Pack(&buf, []string{filepath.Join(src, "big")}, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := Unpack(&buf, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(old); err != nil || string(b) != "new content" {
		t.Fatalf("big: %q, %v", b, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for fds() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open after the copy, %d before: the replaced file is still held", fds(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKernelFiles: a file of /proc or /sys, whose size stat does not
// tell (0 bytes, or 4096), is copied with what reading it gives, as cp
// copies it; bpcp of /proc/cpuinfo landed an empty file.
func TestKernelFiles(t *testing.T) {
	for _, src := range []string{"/proc/self/limits", "/proc/version", "/sys/devices/system/cpu/online"} {
		want, err := os.ReadFile(src)
		if err != nil || len(want) == 0 {
			t.Logf("%s: %v: not on this machine", src, err)
			continue
		}
		dst := filepath.Join(t.TempDir(), "copy")
		must(t, Unpack(bytes.NewReader(pack(t, []string{src}, Options{})), dst, Options{}))
		got, err := os.ReadFile(dst)
		if err != nil || len(got) == 0 || (src != "/proc/self/limits" && !bytes.Equal(got, want)) {
			t.Errorf("%s copied as %q, %v; want %q", src, got, err, want)
		}
	}
}

// TestSpecialTarget: a device at the target is written into, as cp
// does, never replaced by a regular file (bpcp x /dev/null); a fifo is
// refused and stays a fifo.
func TestSpecialTarget(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	mkTree(t, src, tree{"f": "to the fifo"})
	data := pack(t, []string{filepath.Join(src, "f")}, Options{})
	out := t.TempDir()
	fifo := filepath.Join(out, "fifo")
	must(t, unix.Mkfifo(fifo, 0o600))
	if err := Unpack(bytes.NewReader(data), fifo, Options{}); err == nil || !strings.Contains(err.Error(), "is a fifo") {
		t.Errorf("a fifo: got %v, want it refused", err)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("the fifo is no longer one: %v %v", fi.Mode(), err)
	}
	if os.Geteuid() != 0 {
		return // mknod needs root; CI's test run has it
	}
	null := filepath.Join(out, "null")
	must(t, unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	before, err := os.Lstat(null)
	must(t, err)
	must(t, Unpack(bytes.NewReader(data), null, Options{Preserve: true}))
	fi, err := os.Lstat(null)
	must(t, err)
	if fi.Mode() != before.Mode() || !os.SameFile(fi, before) {
		t.Errorf("the device %v became %v", before.Mode(), fi.Mode())
	}
}

// TestExistingTarget: a file that is replaced keeps its owner and mode
// (without -p), one with other hard links is written in place so they
// see it too, whole or not at all, and one the caller may not write is
// refused, as cp does.
func TestExistingTarget(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	mkTree(t, src, tree{"f": "new content"})
	must(t, os.Chmod(filepath.Join(src, "f"), 0o755))
	data := pack(t, []string{filepath.Join(src, "f")}, Options{})

	out := t.TempDir()
	dst := filepath.Join(out, "f")
	must(t, os.WriteFile(dst, []byte("old"), 0o640))
	must(t, Unpack(bytes.NewReader(data), dst, Options{}))
	fi, err := os.Stat(dst)
	must(t, err)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("replaced file's mode: got %v, want 0640", fi.Mode().Perm())
	}

	// Hard links: a cut stream leaves both as they were, a whole one
	// reaches both.
	other := filepath.Join(out, "other")
	must(t, os.Link(dst, other))
	cut := &failAfter{r: bytes.NewReader(data), n: 512 + 5, err: io.EOF}
	if err := Unpack(cut, dst, Options{}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("cut stream: got %v", err)
	}
	for _, p := range []string{dst, other} {
		if b, _ := os.ReadFile(p); string(b) != "new content" {
			t.Errorf("after a cut stream %s holds %q", p, b)
		}
	}
	must(t, os.WriteFile(dst, []byte("old old old old old"), 0o640))
	must(t, Unpack(bytes.NewReader(data), dst, Options{}))
	for _, p := range []string{dst, other} {
		if b, _ := os.ReadFile(p); string(b) != "new content" {
			t.Errorf("%s holds %q, want the new content", p, b)
		}
	}
	a, _ := os.Stat(dst)
	b, _ := os.Stat(other)
	if !os.SameFile(a, b) {
		t.Errorf("the hard link was broken")
	}
	if ents, _ := os.ReadDir(out); len(ents) != 2 {
		t.Errorf("left behind: %v", ents)
	}

	if os.Geteuid() == 0 {
		return // root may write anything
	}
	ro := filepath.Join(out, "ro")
	must(t, os.WriteFile(ro, []byte("mine, read-only"), 0o444))
	if err := Unpack(bytes.NewReader(data), ro, Options{}); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("a read-only file: got %v, want permission denied", err)
	}
}
