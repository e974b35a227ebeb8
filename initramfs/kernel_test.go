package initramfs

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBzImage returns a minimal bzImage header carrying version.
func fakeBzImage(version string, proto uint16) []byte {
	b := make([]byte, 0x400+len(version)+1)
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x206:], proto)
	binary.LittleEndian.PutUint16(b[0x20E:], 0x200)
	copy(b[0x400:], version)
	return b
}

func TestKernelRelease(t *testing.T) {
	for _, tc := range []struct {
		name    string
		img     []byte
		want    string
		wantErr string
	}{
		{"debian", fakeBzImage("6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP", 0x20f), "6.1.0-57-amd64", ""},
		{"no magic", make([]byte, 0x400), "", "no HdrS"},
		{"old protocol", fakeBzImage("1.0", 0x105), "", "too old"},
		{"empty version", fakeBzImage("", 0x20f), "", "empty"},
		{"short", []byte("MZ"), "", "too short"},
	} {
		got, err := KernelRelease(bytes.NewReader(tc.img))
		if got != tc.want || (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: got %q, %v; want %q, error with %q", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestKernelReleaseReal reads the installed Debian kernels, whose release
// is their file name's suffix.
func TestKernelReleaseReal(t *testing.T) {
	imgs, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(imgs) == 0 {
		t.Skip("no /boot/vmlinuz-* on this machine")
	}
	for _, img := range imgs {
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		got, err := KernelRelease(f)
		f.Close()
		if want := strings.TrimPrefix(filepath.Base(img), "vmlinuz-"); got != want || err != nil {
			t.Errorf("%s: got %q, %v; want %q", img, got, err, want)
		}
	}
}

func FuzzKernelRelease(f *testing.F) {
	f.Add(fakeBzImage("6.1.0-57-amd64 (x) #1", 0x20f))
	f.Add(make([]byte, 0x210))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := KernelRelease(bytes.NewReader(b))
		if err == nil && (s == "" || !printable(s)) {
			t.Fatalf("release %q accepted", s)
		}
	})
}
