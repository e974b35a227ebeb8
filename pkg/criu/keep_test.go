package criu

import (
	"os"
	"path/filepath"
	"testing"
)

// TestKeepNoFollow: a link planted where the log is kept is replaced,
// never written through (a user's /tmp link to /etc/motd was written as
// root).
func TestKeepNoFollow(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "motd")
	os.WriteFile(victim, []byte("welcome\n"), 0o644)
	logs := filepath.Join(dir, "logs")
	os.Mkdir(logs, 0o700)
	kept := filepath.Join(logs, "checkpoint.log")
	if err := os.Symlink(victim, kept); err != nil {
		t.Fatal(err)
	}
	if err := keep(kept, []byte("Error (criu): boom\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "welcome\n" {
		t.Errorf("written through the link: %q", b)
	}
	if fi, err := os.Lstat(kept); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("the kept log: %v %v", fi, err)
	}
	if err := keep(filepath.Join(dir, "new", "restore.log"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "new")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the directory made: %v %v", fi, err)
	}
}
