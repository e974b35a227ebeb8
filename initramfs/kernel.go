package initramfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// KernelRelease reads the release string (what `uname -r` prints on it,
// e.g. "6.1.0-57-amd64") from an x86 bzImage's setup header: the "HdrS"
// magic at 0x202, boot protocol ≥ 2.00 at 0x206, and at 0x20E the offset,
// minus 0x200, of a NUL-terminated version string whose first word is the
// release (Documentation/arch/x86/boot.rst).
func KernelRelease(r io.ReaderAt) (string, error) {
	hdr := make([]byte, 0x210)
	if n, err := r.ReadAt(hdr, 0); n < len(hdr) {
		if errors.Is(err, io.EOF) {
			return "", errors.New("not an x86 bzImage (too short)")
		}
		return "", fmt.Errorf("kernel header: %w", err)
	}
	if string(hdr[0x202:0x206]) != "HdrS" {
		return "", errors.New("not an x86 bzImage (no HdrS magic)")
	}
	if v := binary.LittleEndian.Uint16(hdr[0x206:]); v < 0x200 {
		return "", fmt.Errorf("boot protocol %#x too old to carry a version string", v)
	}
	off := int64(binary.LittleEndian.Uint16(hdr[0x20E:]))
	if off == 0 {
		return "", errors.New("bzImage carries no version string")
	}
	buf := make([]byte, 256)
	n, err := r.ReadAt(buf, off+0x200)
	if n == 0 && err != nil {
		return "", fmt.Errorf("kernel version string: %w", err)
	}
	buf = buf[:n]
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	f := strings.Fields(string(buf))
	if len(f) == 0 || !printable(f[0]) {
		return "", errors.New("kernel version string is empty or not text")
	}
	return f[0], nil
}

func printable(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
