package creds_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/beo-cluster/beo/pkg/creds"
	"github.com/beo-cluster/beo/pkg/wire"
)

const nobody = 65534

// openDir returns a directory every user may traverse, holding an
// world-writable "pub" and a root-only "priv" (0700).
func openDir(t *testing.T) (pub, priv string) {
	t.Helper()
	d := t.TempDir()
	// t.TempDir's parent is 0700: let nobody traverse it.
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pub, priv = filepath.Join(d, "pub"), filepath.Join(d, "priv")
	if err := os.Mkdir(pub, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pub, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := os.Mkdir(priv, 0o700); err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestDoAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: switching the filesystem identity")
	}
	pub, priv := openDir(t)
	tests := []struct {
		name    string
		cred    wire.Cred
		path    string
		wantErr error  // nil: created
		wantUID uint32 // owner of the created file
	}{
		{"nobody in a world-writable dir", wire.Cred{UID: nobody, GID: nobody}, filepath.Join(pub, "a"), nil, nobody},
		{"nobody in a 0700 root dir", wire.Cred{UID: nobody, GID: nobody}, filepath.Join(priv, "b"), fs.ErrPermission, 0},
		{"root in a 0700 root dir", wire.Cred{}, filepath.Join(priv, "c"), nil, 0},
		{"nobody with groups", wire.Cred{UID: nobody, GID: nobody, Groups: []uint32{nobody, 100}}, filepath.Join(pub, "d"), nil, nobody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := creds.Do(tt.cred, func() error {
				return os.WriteFile(tt.path, []byte("x"), 0o644)
			})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Do: got err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			fi, err := os.Stat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != tt.wantUID || st.Gid != tt.cred.GID {
				t.Errorf("owner: got %d:%d, want %d:%d", st.Uid, st.Gid, tt.wantUID, tt.cred.GID)
			}
		})
	}
	// The identity never leaks to the calling goroutine's thread.
	p := filepath.Join(pub, "after")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 0 {
		t.Errorf("file made after Do: got owner %d, want 0", uid)
	}
}

// TestDoGivesThreadsBack: once Do has returned — fn having succeeded,
// failed or panicked — no thread of the process carries the borrowed
// identity: every thread's filesystem ids and groups are root's again.
func TestDoGivesThreadsBack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: switching the filesystem identity")
	}
	c := wire.Cred{UID: nobody, GID: nobody, Groups: []uint32{nobody, 100}}
	boom := errors.New("boom")
	for i := range 50 {
		var err error
		func() {
			defer func() {
				if p := recover(); p != nil && p != "fn panicked" {
					t.Errorf("recovered %v, want the panic of fn", p)
				}
			}()
			err = creds.Do(c, func() error {
				switch i % 3 {
				case 1:
					return boom
				case 2:
					panic("fn panicked")
				}
				_, err := os.Stat("/")
				return err
			})
		}()
		if i%3 == 1 && err != boom {
			t.Fatalf("Do: got %v, want %v", err, boom)
		}
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "status"))
		if err != nil {
			continue // ended meanwhile
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") && f[4] != "0" {
				t.Errorf("thread %s: %s: fs id %s, want 0", task.Name(), f[0], f[4])
			}
			if len(f) > 0 && f[0] == "Groups:" && strings.Contains(line, " 100") {
				t.Errorf("thread %s still has the borrowed groups: %s", task.Name(), line)
			}
		}
	}
}

func TestDoNotRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs only as a non-root user")
	}
	ran := false
	if err := creds.Do(wire.Cred{UID: uint32(os.Geteuid())}, func() error { ran = true; return nil }); err != nil || !ran {
		t.Errorf("own uid: got ran=%v err=%v, want ran=true err=nil", ran, err)
	}
	err := creds.Do(wire.Cred{UID: 0}, func() error { t.Error("fn ran as another uid"); return nil })
	if got, want := err.Error(), "cannot act as uid 0: not running as root"; got != want {
		t.Errorf("other uid: got %q, want %q", got, want)
	}
}

func TestDoReturnsFnError(t *testing.T) {
	want := errors.New("boom")
	got := creds.Do(wire.Cred{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}, func() error { return want })
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

// BenchmarkDo is the cost of one Do as another user (root only): what a
// non-root caller's exec pays on the master (its closure) and on a node
// (its working directory).
func BenchmarkDo(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: switching the filesystem identity")
	}
	c := wire.Cred{UID: nobody, GID: nobody, Groups: []uint32{nobody}}
	for b.Loop() {
		if err := creds.Do(c, func() error { _, err := os.Stat("/"); return err }); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDoNoPtrace: a borrowed identity cannot follow /proc/PID/cwd of
// another user's process into a directory only that user may enter —
// CAP_SYS_PTRACE, which a non-zero fsuid leaves, would have let it.
func TestDoNoPtrace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: switching the filesystem identity")
	}
	const victim = 4321
	home := filepath.Join(t.TempDir(), "home") // shut: 0700
	dir := filepath.Join(home, "proj")         // open, but only through home
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "secret"), []byte("42"), 0o644)
	os.Chmod(home, 0o700)
	os.Chown(home, victim, victim)
	for d := filepath.Dir(home); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // the test's own directories, never /tmp itself
	}
	cmd := exec.Command("sleep", "30")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: victim, Gid: victim}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	path := fmt.Sprintf("/proc/%d/cwd/secret", cmd.Process.Pid)
	if b, err := os.ReadFile(path); err != nil || string(b) != "42" {
		t.Fatalf("as root: %q %v", b, err)
	}
	err := creds.Do(wire.Cred{UID: nobody, GID: nobody, Groups: []uint32{nobody}}, func() error {
		_, err := os.ReadFile(path)
		return err
	})
	if err == nil {
		t.Error("nobody read another user's file through /proc/PID/cwd")
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "42" { // the thread is root's again
		t.Errorf("as root after Do: %q %v", b, err)
	}
}
