package bpcp

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
)

func TestParseOperand(t *testing.T) {
	tests := []struct {
		in   string
		node int
		path string
	}{
		{"input.dat", -1, "input.dat"},
		{"2:/tmp", 2, "/tmp"},
		{".2:/tmp/input.dat", 2, "/tmp/input.dat"},
		{"n4:/tmp", 4, "/tmp"},
		{"N4:/tmp", 4, "/tmp"},
		{"-1:/etc/hosts", -1, "/etc/hosts"},
		{".-1:/etc/hosts", -1, "/etc/hosts"},
		{"master:/etc/hosts", -1, "/etc/hosts"},
		{"backup:2024", -1, "backup:2024"},
		{"./3:x", -1, "./3:x"},
		{":x", -1, ":x"},
		{"n:x", -1, "n:x"},
		{"./3-4:x", -1, "./3-4:x"},
		{"alliance:x", -1, "alliance:x"},
		{"3:a:b", 3, "a:b"},
	}
	for _, tt := range tests {
		got, err := parseOperand(tt.in)
		if err != nil || got.node != tt.node || got.path != tt.path {
			t.Errorf("parseOperand(%q): got %+v %v, want node %d path %q", tt.in, got, err, tt.node, tt.path)
		}
	}
	for _, bad := range []string{"", "3:", "3-4:x", "0,1:/tmp/x", "all:/tmp", "allup:/tmp", ".1-.3:x"} {
		if _, err := parseOperand(bad); err == nil {
			t.Errorf("parseOperand(%q): no error", bad)
		}
	}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func bpcp(args ...string) (string, error) {
	var errOut bytes.Buffer
	err := Run(context.Background(), args, applets.IO{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &errOut})
	return errOut.String(), err
}

// Local copies need no master: they exercise the whole stream path.
func TestLocal(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.txt"), "alpha")
	write(t, filepath.Join(dir, "b.txt"), "beta")
	write(t, filepath.Join(dir, "tree/x/y.txt"), "why")
	if err := os.Mkdir(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	in := func(p string) string { return filepath.Join(dir, p) }

	if _, err := bpcp(in("a.txt"), in("out/c.txt")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, in("out/c.txt")); got != "alpha" {
		t.Errorf("copy as: got %q", got)
	}
	if _, err := bpcp(in("a.txt"), in("b.txt"), in("out")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, in("out/b.txt")); got != "beta" {
		t.Errorf("copy into: got %q", got)
	}
	// Naming the master needs it: on a node, master: is not this machine.
	t.Setenv("BEO_SOCKET", in("no-master.sock"))
	for _, args := range [][]string{{"-1:" + in("a.txt"), in("out/d.txt")}, {in("a.txt"), "master:" + in("out/d.txt")}} {
		if _, err := bpcp(args...); !errors.Is(err, bproc.ErrNoMaster) {
			t.Errorf("bpcp %q without a master: got %v, want %v", args, err, bproc.ErrNoMaster)
		}
	}
	if _, err := os.Stat(in("out/d.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("out/d.txt: got %v, want none", err)
	}
	if _, err := bpcp("-r", in("tree"), in("out")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, in("out/tree/x/y.txt")); got != "why" {
		t.Errorf("copy -r: got %q", got)
	}

	_, err := bpcp(in("a.txt"), in("b.txt"), in("out/c.txt"))
	if err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("several into a file: got %v", err)
	}
	_, err = bpcp(in("tree"), in("out"))
	if err == nil || err.Error() != in("tree")+": is a directory (use -r)" {
		t.Errorf("dir without -r: got %v", err)
	}
	_, err = bpcp(in("nope"), in("out"))
	if err == nil || err.Error() != in("nope")+": no such file or directory" {
		t.Errorf("missing source: got %v", err)
	}
	_, err = bpcp(in("a.txt"), in("tree/../a.txt"), in("out"))
	if err == nil || !strings.Contains(err.Error(), "would both land as a.txt") {
		t.Errorf("same name twice: got %v", err)
	}
	if got := read(t, in("out/c.txt")); got != "alpha" {
		t.Errorf("failed copies touched out/c.txt: %q", got)
	}
}

func TestDistinct(t *testing.T) {
	ops := func(args ...string) []operand {
		var out []operand
		for _, a := range args {
			o, err := parseOperand(a)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, o)
		}
		return out
	}
	if err := distinct(ops("a.txt", "2:/tmp/a.txt")); err == nil || err.Error() != "a.txt and 2:/tmp/a.txt would both land as a.txt" {
		t.Errorf("got %v", err)
	}
	if err := distinct(ops("1:/x/", "2:x")); err == nil {
		t.Error("1:/x/ and 2:x: no error")
	}
	if err := distinct(ops("a.txt", "2:/tmp/b.txt", "3:/c")); err != nil {
		t.Errorf("got %v", err)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"a"}, {"-x", "a", "b"}, {"a", "3:"}} {
		_, err := bpcp(args...)
		var u *applets.Usage
		if !errors.As(err, &u) {
			t.Errorf("bpcp %q: got %v, want a usage error", args, err)
		}
	}
}

// TestMasterSources: which local sources the master may read by absolute
// path, and that the archive name (the last element) stays the same.
func TestMasterSources(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.txt"), "alpha")
	write(t, filepath.Join(dir, "tree/x"), "x")
	os.Symlink("/proc/self/status", filepath.Join(dir, "self"))
	t.Chdir(dir)
	for _, tc := range []struct {
		path string
		want string // "" = not by the master
	}{
		{"a.txt", filepath.Join(dir, "a.txt")},
		{"./a.txt", filepath.Join(dir, "a.txt")},
		{"tree/", filepath.Join(dir, "tree")},
		{"tree/.", filepath.Join(dir, "tree")},
		{".", dir},
		{filepath.Join(dir, "tree", "x"), filepath.Join(dir, "tree", "x")},
		{"tree/../a.txt", ""},
		{"..", ""},
		{"/proc/self/status", ""},
		{"/dev/stdin", ""},
		{"self", ""}, // a link into /proc
		{"missing", ""},
	} {
		got, ok := masterSources([]operand{{node: -1, path: tc.path}})
		if tc.want == "" {
			if ok {
				t.Errorf("masterSources(%q): got %q, want the streamed path", tc.path, got)
			}
			continue
		}
		if !ok || len(got) != 1 || got[0] != tc.want {
			t.Errorf("masterSources(%q): got %q %v, want %q", tc.path, got, ok, tc.want)
			continue
		}
		abs, _ := filepath.Abs(tc.path)
		if filepath.Base(got[0]) != filepath.Base(abs) {
			t.Errorf("masterSources(%q): archive name %q, want %q", tc.path, filepath.Base(got[0]), filepath.Base(abs))
		}
	}
	if _, ok := masterSources([]operand{{node: -1, path: "a.txt"}, {node: -1, path: "tree/../x"}}); ok {
		t.Error("one source with ..: the others alone must not go by the master")
	}
}
