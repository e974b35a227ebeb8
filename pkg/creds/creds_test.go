package creds_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
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
