package elfdeps

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// shebangSize is how much of a script Linux reads for its #! line
// (BINPRM_BUF_SIZE).
const shebangSize = 256

// shebang parses a script's #! line as Linux's binfmt_script does: the
// interpreter is the first word, the optional argument is the rest of the
// line, spaces and tabs trimmed; a line longer than the buffer is fine
// unless the interpreter name itself is cut.
func shebang(r io.ReaderAt) (interp, arg string, err error) {
	buf := make([]byte, shebangSize) // NUL-padded past the end of a short file
	if _, err := r.ReadAt(buf, 0); err != nil && err != io.EOF {
		return "", "", err
	}
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' }
	isTerm := func(c byte) bool { return c == ' ' || c == '\t' || c == 0 }
	end := bytes.IndexByte(buf, '\n')
	if end < 0 {
		last := len(buf) - 1 // the kernel keeps the last byte for a NUL
		i := 2
		for i < last && isSpace(buf[i]) {
			i++
		}
		j := i
		for j < last && !isTerm(buf[j]) {
			j++
		}
		if i == last || j == last {
			return "", "", errors.New("#! line too long: interpreter name truncated")
		}
		end = last
	}
	for end > 2 && isSpace(buf[end-1]) {
		end--
	}
	i := 2
	for i < end && isSpace(buf[i]) {
		i++
	}
	if i == end {
		return "", "", errors.New("#! line names no interpreter")
	}
	sep := i
	for sep < end && !isTerm(buf[sep]) {
		sep++
	}
	interp = string(buf[i:sep])
	if interp == "" { // "#!" then NUL: the kernel would open ""
		return "", "", errors.New("#! line names no interpreter")
	}
	if sep < end && buf[sep] != 0 {
		a := sep
		for a < end && isSpace(buf[a]) {
			a++
		}
		arg = string(buf[a:end])
		if k := strings.IndexByte(arg, 0); k >= 0 {
			arg = arg[:k]
		}
	}
	return interp, arg, nil
}

// plainName reports whether env would take arg as a program name: one
// word, not an option, not a VAR=value assignment.
func plainName(arg string) bool {
	return arg != "" && !strings.ContainsAny(arg, " \t=") && !strings.HasPrefix(arg, "-")
}

// LookPath finds an executable named file the way a shell would on the
// node: a name with a slash is used as it is (relative to opts.Dir);
// otherwise each directory of opts.Path is tried in order (an empty entry
// is opts.Dir). It returns the absolute name in root's view, symlinks
// not resolved, or an error wrapping exec.ErrNotFound.
func LookPath(root, file string, opts Options) (string, error) {
	p, err := lookPath(root, file, opts)
	if err != nil {
		return "", fmt.Errorf("elfdeps: %w", err)
	}
	return p, nil
}

func lookPath(root, file string, opts Options) (string, error) {
	dir := path.Clean("/" + opts.Dir)
	if strings.Contains(file, "/") {
		p := abs(dir, file)
		if err := executable(root, p); err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		return p, nil
	}
	for _, d := range filepath.SplitList(opts.Path) {
		p := abs(dir, path.Join(d, file))
		if executable(root, p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", file, exec.ErrNotFound)
}

// executable checks that p is a regular file with an execute bit.
func executable(root, p string) error {
	r, err := resolve(root, p)
	if err != nil {
		return err
	}
	if m := r.info.Mode(); !m.IsRegular() || m.Perm()&0o111 == 0 {
		return exec.ErrNotFound
	}
	return nil
}

// openFile opens a resolved name under root for the header reads.
func openFile(root, real string) (*headFile, error) {
	p := filepath.Join(root, real)
	for {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		switch {
		case err == nil:
			return &headFile{f: os.NewFile(uintptr(fd), p)}, nil
		case err != unix.EINTR:
			return nil, &fs.PathError{Op: "open", Path: p, Err: err}
		}
	}
}

// headSize is how much of a file headFile reads at once: the ELF header,
// the program headers and usually PT_INTERP lie in it, or a #! line.
const headSize = 4096

// headFile is a file opened for its headers (openFile). It reads its
// first headSize bytes once and answers reads within them from memory:
// debug/elf reads the headers piece by piece, a system call each, and
// the master walks a program's closure for every exec. Reads past the
// head go to the file. The file is opened without the runtime's poller
// (os.NewFile of a blocking descriptor): os.Open would try to register
// a regular file with it, four system calls for nothing.
type headFile struct {
	f    *os.File
	head []byte // once read: the first headSize bytes, or the whole file
	read bool
}

func (h *headFile) ReadAt(p []byte, off int64) (int, error) {
	if !h.read {
		h.read = true
		b := make([]byte, headSize)
		n, _ := h.f.ReadAt(b, 0) // a short or failed read: the file answers below
		h.head = b[:n]
	}
	if off >= 0 && off+int64(len(p)) <= int64(len(h.head)) {
		return copy(p, h.head[off:]), nil
	}
	return h.f.ReadAt(p, off)
}

func (h *headFile) Close() error { return h.f.Close() }
