package fstab

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNodeChecks: lines that would break a node are errors, suspicious
// ones warnings; what the example ships stays clean.
func TestNodeChecks(t *testing.T) {
	tests := []struct {
		name, text string
		opt        Options
		want       []string // "line: severity: substring"
	}{
		{"example", ExampleText, Options{}, nil},
		{"the node's own mounts, as the node mounts them", "$RAMDISK / tmpfs\ntmpfs / tmpfs\nnone /proc proc\nnone /sys sysfs\nnone /sys/fs/cgroup cgroup2\n" +
			"none /dev devtmpfs\nnone /dev/pts devpts\nnone /dev/shm tmpfs\nnone /run tmpfs\n", Options{},
			[]string{"2: warning: / is mounted by line 1 too"}}, // the repeated target only
		{"nfs over the root", "$MASTER:/e / nfs rw 0 0\n", Options{},
			[]string{"1: error: mounting nfs on / would hide the node's root, the RAM file system holding its programs (tmpfs, mounted by the node itself) and break the node"}},
		{"ramfs over the root", "$RAMDISK / ramfs\n", Options{},
			[]string{"1: error: mounting ramfs on / would hide"}},
		{"tmpfs over /dev", "none /dev tmpfs\n", Options{},
			[]string{"1: error: mounting tmpfs on /dev would hide the node's own /dev (devtmpfs, mounted by the node itself) and break the node; only a devtmpfs line, which does nothing, may name /dev"}},
		{"nfs over /proc", "10.54.0.1:/proc /proc nfs4\n", Options{},
			[]string{"1: error: mounting nfs4 on /proc would hide"}},
		{"bind over /sys", "/srv/sys /sys none bind\n", Options{},
			[]string{"1: error: mounting none on /sys would hide"}},
		{"above a node mount", "none /sys/fs tmpfs\n", Options{},
			[]string{"1: error: mounting on /sys/fs would hide the node's own /sys/fs/cgroup"}},
		{"below a node mount", "none /proc/sys/fs/binfmt_misc binfmt_misc\nnone /sys/kernel/debug debugfs\nnone /dev/hugepages hugetlbfs\n", Options{}, nil},
		{"noauto over the root", "$MASTER:/e / nfs noauto\n", Options{}, nil},
		{"unknown type", "/dev/sda3 /scratch bogusfs\n", Options{},
			[]string{`1: warning: unknown file system type "bogusfs": the mount fails unless the node's kernel has it`}},
		{"fuse helper type", "sshfs#u@h:/ /x fuse.sshfs\n", Options{},
			[]string{`1: warning: unknown file system type "fuse.sshfs"`}},
		{"type the kernel has", "/dev/sda3 /scratch bogusfs\n", Options{KnownType: func(typ string) bool { return typ == "bogusfs" }}, nil},
		{"same export twice", "$MASTER:/home /home nfs\n$MASTER:/home/ /mnt/home nfs ro\n", Options{},
			[]string{"2: warning: $MASTER:/home/ is mounted by line 1 too: one file system at two places"}},
		{"same device twice", "/dev/sda3 /scratch ext4\n/dev/sda3 /data ext4\n", Options{},
			[]string{"2: warning: /dev/sda3 is mounted by line 1 too"}},
		{"swap and mount", "/dev/sda2 none swap\nUUID=1234 /a ext4\n/dev/sda2 /b ext4\nUUID=1234 /c ext4 noauto\n", Options{},
			[]string{"3: warning: /dev/sda2 is mounted by line 1 too"}},
		{"pseudo file systems and binds repeat", "none /a tmpfs\nnone /b tmpfs\n$RAMDISK /c tmpfs\n$RAMDISK /d tmpfs\n/data /e none bind\n/data /f none bind\n", Options{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := ParseWith("fstab", []byte(tt.text), tt.opt)
			checkDiags(t, tab, err, tt.want)
			for _, e := range tab.Entries {
				if e.Bad == "" && e.Auto() && e.Type != "swap" && nodeMount(e) != "" {
					t.Errorf("line %d: over a node mount, yet not bad", e.Line)
				}
			}
		})
	}
}

// TestLoadRefuses: Load reads only regular files of bounded size, and
// never blocks on a FIFO.
func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "fstab")
	if err := os.WriteFile(base, []byte(ExampleText), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(NodeFile(base, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", NodeFile(base, 4)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(base, NodeFile(base, 5)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		n    int
		want string
	}{
		{3, "not a regular file (a FIFO)"},
		{4, "not a regular file (a character device)"},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := Load(base, tt.n)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), NodeFile(base, tt.n)+": "+tt.want) {
				t.Errorf("Load node %d: got %v, want an error naming the file: %s", tt.n, err, tt.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Load node %d blocks", tt.n)
		}
	}
	if tab, err := Load(base, 5); err != nil || tab == nil || len(tab.Entries) != 8 {
		t.Errorf("Load through a symlink: got %v", err)
	}
}
