package criu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestErrorReason: a failed run's message names the cause a user can act
// on, from the log lines CRIU 3.17 writes, not CRIU's trailing "FAILED".
func TestErrorReason(t *testing.T) {
	for _, tc := range []struct {
		name, log, msg, want string
	}{
		{"kernel modules", `(00.006622) Error (criu/sockets.c:209): sockets: Diag module missing (-2)
(00.032974) Error (criu/util.c:642): exited, status=1
(00.040000) Error (criu/kerndat.c:1666): kerndat_has_nftables_concat failed when initializing kerndat.
(00.040100) Error (criu/crtools.c:260): Could not initialize kernel features detection.
`, "", "bootmodule nf_tables tun veth"},
		{"established TCP", "(00.3) Error (criu/sk-inet.c:199): inet: Connected TCP socket, consider using --tcp-established option.\n(00.4) Error (criu/cr-dump.c:2053): Dumping FAILED.\n",
			"", "an established TCP connection, which cannot move"},
		{"MPTCP", "(00.2) Error (criu/sk-inet.c:128): inet: Unsupported proto 262 for socket 3666\n", "", "MPTCP socket"},
		{"pid taken", "   16421: Error (criu/cr-restore.c:1469): Can't fork for 143: File exists\n(00.4) Error (criu/cr-restore.c:2537): Restoring FAILED.\n",
			"", "Can't fork for 143: File exists"},
		{"only CRIU's answer", "", "no log", "criu restore failed: no log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "x.log")
			if err := os.WriteFile(p, []byte(tc.log), 0o600); err != nil {
				t.Fatal(err)
			}
			e := &Error{Op: "restore", Msg: tc.msg, Log: logErrors(p)}
			if got := e.Error(); !strings.Contains(got, tc.want) {
				t.Errorf("Error() = %q, want it to contain %q", got, tc.want)
			}
			if strings.Contains(e.Error(), "FAILED") {
				t.Errorf("Error() = %q names CRIU's trailer, not the cause", e.Error())
			}
		})
	}
}

// TestPipeInode: the inode of a pipe in /proc/PID/fd, and 0 for anything
// else.
func TestPipeInode(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	ino, err := FileInode(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := PipeInode(os.Getpid(), int(w.Fd())); got != ino || got == 0 {
		t.Errorf("PipeInode(write end) = %d, want %d", got, ino)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := PipeInode(os.Getpid(), int(f.Fd())); got != 0 {
		t.Errorf("PipeInode(/dev/null) = %d, want 0", got)
	}
}

// fakeCRIU writes a stand-in for criu that records its arguments and
// what its descriptor 3 is in the image directory (its working
// directory), then does what script says.
func fakeCRIU(t *testing.T, script string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "criu")
	body := "#!/bin/sh\necho \"$@\" >args\nreadlink /proc/self/fd/3 >fd3 2>/dev/null\n" + script + "\n"
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func readTrim(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestCommandLine: what Dump and Restore ask of criu — the options, the
// pipes as descriptors from 3 with their inodes, the restored root's pid
// from the pid file — and a failed run's Error from its log and stderr.
func TestCommandLine(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tool := Tool{Path: fakeCRIU(t, "[ \"$1\" = restore ] && echo 4242 >restore.pid\nexit 0")}
	if err := tool.Dump(ctx, 77, dir); err != nil {
		t.Fatalf("Dump: %v", err)
	}
	if got, want := readTrim(t, filepath.Join(dir, "args")), "dump -D "+dir+" -o dump.log -v4 --manage-cgroups=ignore -t 77 -R"; got != want {
		t.Errorf("dump args %q, want %q", got, want)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	ino, err := FileInode(w)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := tool.Restore(ctx, dir, []Pipe{{Inode: 99, File: w}})
	if err != nil || pid != 4242 {
		t.Fatalf("Restore = %d, %v; want 4242", pid, err)
	}
	if got, want := readTrim(t, filepath.Join(dir, "args")),
		"restore -D "+dir+" -o restore.log -v4 --manage-cgroups=ignore -d -S --pidfile restore.pid --inherit-fd fd[3]:pipe:[99]"; got != want {
		t.Errorf("restore args %q, want %q", got, want)
	}
	if got, want := readTrim(t, filepath.Join(dir, "fd3")), fmt.Sprintf("pipe:[%d]", ino); got != want {
		t.Errorf("criu's fd 3 is %q, want the pipe %q", got, want)
	}

	// A restore that wrote no pid file (the image's own is not taken).
	os.WriteFile(filepath.Join(dir, "restore.pid"), []byte("1234\n"), 0o644)
	if pid, err := (Tool{Path: fakeCRIU(t, "exit 0")}).Restore(ctx, dir, nil); err == nil {
		t.Errorf("Restore without a pid file = %d, want an error", pid)
	}

	fail := Tool{Path: fakeCRIU(t, "echo '   16421: Error (criu/cr-restore.c:1469): Can'\"'\"'t fork for 143: File exists' >restore.log\necho boom >&2\nexit 1"),
		KeepLog: filepath.Join(t.TempDir(), "kept.log")}
	_, err = fail.Restore(ctx, dir, nil)
	var e *Error
	if !errors.As(err, &e) || e.Msg != "boom" || !strings.Contains(e.Error(), "Can't fork for 143: File exists") || e.LogFile != fail.KeepLog {
		t.Errorf("failed restore: %#v (%v), want CRIU's stderr, its log's error and the kept log", e, err)
	}
}

// TestToolLoadsModules: every run first asks for the modules CRIU needs
// (a node loads its bootmodules in the background after it is up, and a
// move right after a boot found tun missing), even one that then fails.
func TestToolLoadsModules(t *testing.T) {
	var got [][]string
	tool := Tool{Path: filepath.Join(t.TempDir(), "no-criu"), LoadModules: func(names ...string) error {
		got = append(got, names)
		return nil
	}}
	dir := t.TempDir()
	if err := tool.Dump(t.Context(), os.Getpid(), dir); err == nil {
		t.Fatal("Dump with no criu program succeeded")
	}
	if _, err := tool.Restore(t.Context(), dir, nil); err == nil {
		t.Fatal("Restore with no criu program succeeded")
	}
	if len(got) != 2 || strings.Join(got[0], " ") != strings.Join(Modules, " ") || strings.Join(got[1], " ") != strings.Join(Modules, " ") {
		t.Errorf("LoadModules calls %q, want Modules twice (%q)", got, Modules)
	}
}
