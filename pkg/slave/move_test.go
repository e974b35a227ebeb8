package slave

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestCheckpointImageRoundTrip: packDir and unpack carry a checkpoint's
// files whole; unpack refuses what packDir never writes (a path, a link).
func TestCheckpointImageRoundTrip(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	files := map[string]string{"core-1.img": "core", "pages-1.img": string(bytes.Repeat([]byte{7}, 1<<20)), "empty.img": ""}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(src, n), []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, err := packDir(src)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := unpack(f, dst); err != nil {
		t.Fatal(err)
	}
	for n, want := range files {
		got, err := os.ReadFile(filepath.Join(dst, n))
		if err != nil || string(got) != want {
			t.Errorf("%s: %d bytes, err %v; want %d bytes", n, len(got), err, len(want))
		}
	}
	for _, h := range []tar.Header{
		{Name: "../x.img", Typeflag: tar.TypeReg},
		{Name: "sub/x.img", Typeflag: tar.TypeReg},
		{Name: "l.img", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&h)
		tw.Close()
		if err := unpack(&buf, t.TempDir()); err == nil {
			t.Errorf("unpack took %q (type %c)", h.Name, h.Typeflag)
		}
	}
}

// TestStopped: a process's stopped state, as the checkpoint waits for it.
func TestStopped(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	if stopped(cmd.Process.Pid) {
		t.Fatal("a running sleep reads as stopped")
	}
	cmd.Process.Signal(syscall.SIGSTOP)
	if err := waitStopped(cmd.Process.Pid, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGCONT)
}
