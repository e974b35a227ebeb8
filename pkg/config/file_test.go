package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const editable = "# cluster\r\n" +
	"nodes 32\n" +
	"iprange 10.54.0.100 10.54.0.131\n" +
	"\n" +
	"class centos5u4 kernelimage /var/beowulf/boot/vmlinuz-centos5u4_amd64\n" +
	"node  15\tcentos5u4  pxe+local   pxe\t00:A0:D1:E5:C4:6E 00:A0:D1:E5:C4:6F   # kickstart once\n" +
	"node 16 pxe+local pxe#no space before the comment\r\n" +
	"node 17 00:A0:D1:E5:C4:70\n" +
	"   # trailing comment, no final newline"

func TestSetBootStage(t *testing.T) {
	tests := []struct {
		node  int
		stage BootStage
		line  int    // the line that changes
		want  string // its new text
	}{
		{15, StageLocal, 6, "node  15\tcentos5u4  pxe+local   local\t00:A0:D1:E5:C4:6E 00:A0:D1:E5:C4:6F   # kickstart once"},
		{15, StagePXE, 6, "node  15\tcentos5u4  pxe+local   pxe\t00:A0:D1:E5:C4:6E 00:A0:D1:E5:C4:6F   # kickstart once"},
		{16, StageLocal, 7, "node 16 pxe+local local#no space before the comment\r"},
	}
	for _, tt := range tests {
		f, err := NewFile("test.conf", []byte(editable), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.SetBootStage(tt.node, tt.stage); err != nil {
			t.Fatalf("SetBootStage(%d, %s): %v", tt.node, tt.stage, err)
		}
		before, after := splitLines([]byte(editable)), splitLines(f.Bytes())
		if len(after) != len(before) {
			t.Fatalf("got %d lines, want %d", len(after), len(before))
		}
		for i := range before {
			want := string(before[i])
			if i+1 == tt.line {
				want = tt.want
			}
			if got := string(after[i]); got != want {
				t.Errorf("SetBootStage(%d, %s): line %d: got %q, want %q", tt.node, tt.stage, i+1, got, want)
			}
		}
		if !strings.HasSuffix(string(f.Bytes()), "no final newline") {
			t.Errorf("lost the missing final newline")
		}
		if s, _ := f.Config().Node(tt.node); s.Stage != tt.stage {
			t.Errorf("Config after SetBootStage(%d, %s): got stage %s", tt.node, tt.stage, s.Stage)
		}
	}
}

func TestSetBootStageErrors(t *testing.T) {
	f, _ := NewFile("test.conf", []byte(editable), Options{})
	for _, tt := range []struct {
		node  int
		stage BootStage
		want  string
	}{
		{17, StageLocal, "node 17: line 8 has no boot-sequence and boot-stage"},
		{18, StageLocal, "node 18: no node line"},
		{15, "pxe+local", `node 15: bad boot-stage "pxe+local"`},
	} {
		err := f.SetBootStage(tt.node, tt.stage)
		if err == nil || err.Error() != tt.want {
			t.Errorf("SetBootStage(%d, %s): got %v, want %q", tt.node, tt.stage, err, tt.want)
		}
	}
	if got := string(f.Bytes()); got != editable {
		t.Errorf("failed edits changed the file:\n%s", got)
	}
}

func TestAppend(t *testing.T) {
	f, _ := NewFile("test.conf", []byte(editable), Options{})
	if err := f.AppendNode(18, macs("52:54:00:00:00:12", "52:54:00:00:01:12")...); err != nil {
		t.Fatal(err)
	}
	if err := f.AppendIgnore(macs("52:54:00:00:00:99")...); err != nil {
		t.Fatal(err)
	}
	want := editable + "\nnode 18 52:54:00:00:00:12 52:54:00:00:01:12\nignore 52:54:00:00:00:99\n"
	if got := string(f.Bytes()); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	c := f.Config()
	if m := c.Lookup(macs("52:54:00:00:01:12")[0]); m.Kind != KindNode || m.Node != 18 {
		t.Errorf("Lookup of the appended MAC: got %+v, want node 18", m)
	}
	if m := c.Lookup(macs("52:54:00:00:00:99")[0]); m.Kind != KindIgnored {
		t.Errorf("Lookup of the ignored MAC: got %+v, want ignored", m)
	}
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"duplicate number", f.AppendNode(18, macs("52:54:00:00:00:13")...), "node 18 already configured on line 10"},
		{"duplicate MAC", f.AppendNode(19, macs("00:a0:d1:e5:c4:6e")...), "already listed on line 6"},
		{"beyond nodes", f.AppendNode(32, macs("52:54:00:00:00:20")...), "number not below nodes 32"},
		{"no MAC", f.AppendNode(19), "no MAC"},
		{"ignore no MAC", f.AppendIgnore(), "no MAC"},
		{"ignore duplicate", f.AppendIgnore(macs("52:54:00:00:00:12")...), "already listed on line 10"},
	} {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error containing %q", tt.name, tt.err, tt.want)
		}
	}
	if got := string(f.Bytes()); got != want {
		t.Errorf("failed appends changed the file:\n%q", got)
	}
}

func TestSave(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	if err := os.WriteFile(path, []byte(editable), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetBootStage(15, StageLocal); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, string(f.Bytes()), 0o600)
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries after Save, want 1 (no temporary files)", len(ents))
	}
	if !strings.Contains(string(f.Bytes()), "pxe+local   local\t") {
		t.Errorf("saved bytes lack the new stage")
	}

	// Unchanged: Save does not touch the file.
	before, _ := os.Stat(path)
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(path); !os.SameFile(before, after) {
		t.Errorf("Save without changes replaced the file")
	}

	// Changed on disk behind our back: refuse.
	if err := os.WriteFile(path, []byte("nodes 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.SetBootStage(15, StagePXE)
	var me *ModifiedError
	if err := f.Save(); !errors.As(err, &me) {
		t.Errorf("Save after an outside edit: got %v, want *ModifiedError", err)
	}
	checkFile(t, path, "nodes 4\n", 0o600)
}

func TestSaveNewAndSymlink(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	f, err := NewFile(path, []byte(DefaultText), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, DefaultText, 0o644)
	if err := f.AppendNode(0, macs("52:54:00:00:00:01")...); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, DefaultText+"node 0 52:54:00:00:00:01\n", 0o644)

	// A symlinked config stays a symlink; its target gets the new bytes.
	link := filepath.Join(dir, "link")
	if err := os.Symlink("config", link); err != nil {
		t.Fatal(err)
	}
	g, err := Open(link, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.AppendIgnore(macs("52:54:00:00:00:02")...); err != nil {
		t.Fatal(err)
	}
	if err := g.Save(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("link is no longer a symlink: %v %v", fi, err)
	}
	checkFile(t, path, DefaultText+"node 0 52:54:00:00:00:01\nignore 52:54:00:00:00:02\n", 0o644)

	// The first File no longer matches the disk.
	var me *ModifiedError
	f.AppendIgnore(macs("52:54:00:00:00:03")...)
	if err := f.Save(); !errors.As(err, &me) {
		t.Errorf("stale Save: got %v, want *ModifiedError", err)
	}
	if _, err := Open(filepath.Join(dir, "missing"), Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing): got %v, want fs.ErrNotExist", err)
	}
}

func checkFile(t *testing.T, path, want string, mode fs.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s: got\n%q\nwant\n%q", path, got, want)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != mode {
		t.Errorf("%s: got mode %v, want %v", path, fi.Mode().Perm(), mode)
	}
}
