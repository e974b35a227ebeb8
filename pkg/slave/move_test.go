package slave

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCheckpointImageRoundTrip: writeImage and unpack carry a
// checkpoint's files whole, in exactly the bytes listImage announced
// (the stream is sent without being packed first: a wrong size would
// desynchronise it); unpack refuses what writeImage never writes (a
// path, a link).
func TestCheckpointImageRoundTrip(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	files := map[string]string{"core-1.img": "core", "pages-1.img": string(bytes.Repeat([]byte{7}, 1<<20)), "empty.img": "",
		"pagemap-16386.img": string(bytes.Repeat([]byte{1}, 511)), "mm-16386.img": string(bytes.Repeat([]byte{2}, 513)),
		"a-name-of-ninety-nine-bytes-" + strings.Repeat("x", 99-len("a-name-of-ninety-nine-bytes-")): "long"}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(src, n), []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	list, size, err := listImage(src)
	if err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	if err := writeImage(&exactWriter{w: &stream, left: size}, list); err != nil {
		t.Fatal(err)
	}
	if int64(stream.Len()) != size {
		t.Fatalf("the image stream is %d bytes, listImage announced %d", stream.Len(), size)
	}
	if err := unpack(&stream, dst); err != nil {
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

// TestImageNeverLonger: a file that grew after it was listed fails the
// stream before more than the announced bytes are written.
func TestImageNeverLonger(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pages-1.img")
	os.WriteFile(p, make([]byte, 1000), 0o600)
	list, size, err := listImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, make([]byte, 5000), 0o600)
	var stream bytes.Buffer
	if err := writeImage(&exactWriter{w: &stream, left: size}, list); err == nil {
		t.Error("writeImage of a file that grew succeeded")
	}
	if int64(stream.Len()) > size {
		t.Errorf("%d bytes written, %d announced", stream.Len(), size)
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
