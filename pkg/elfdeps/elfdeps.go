package elfdeps

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"

	"golang.org/x/sys/unix"
)

// File is one name the kernel or the loader opens to start the program.
type File struct {
	// Path is the name as opened on the node, the same as on the master:
	// "/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6".
	Path string
	// Real is Path with every symlink resolved: where the bytes live.
	// Read them on the master from filepath.Join(root, Real).
	Real string
	// Links are the symlinks passed resolving Path to Real, in order; nil
	// if no component of Path is a link.
	Links []Symlink
	// Size and Mode are Real's; Mode has the permission bits (and setuid,
	// setgid, sticky) of a regular file.
	Size int64
	Mode fs.FileMode
	// Shell marks a program that is neither ELF nor #! (a shell script
	// without its first line): the kernel refuses it, and it runs as
	// ShellArgv says, with Shell, whose closure follows it.
	Shell bool
}

// Symlink is a symbolic link to recreate on the node.
type Symlink struct {
	Name   string // absolute, with no symlink in its directory part
	Target string // as readlink returns it: relative or absolute
}

// Options describes the environment the program will run in on the node.
// The zero value is a program run from / with no LD_LIBRARY_PATH.
type Options struct {
	// LibraryPath is LD_LIBRARY_PATH as the program will see it (never
	// read from this process's environment).
	LibraryPath string
	// Dir is the working directory, for relative names: a NEEDED or
	// interpreter path without a leading slash, relative or empty search
	// path entries, and a relative program path. Default "/".
	Dir string
	// Path is PATH, used only for `#!/usr/bin/env NAME` scripts, whose
	// NAME is then added to the closure. Empty: env's argument is not
	// followed.
	Path string
	// Platform and Lib replace $PLATFORM and $LIB; empty means the
	// default for the program's machine (see the package doc).
	Platform string
	Lib      string
	// DefaultDirs replaces the loader's built-in directories.
	DefaultDirs []string
	// Cache replaces root/etc/ld.so.cache; use &Cache{} for none.
	Cache *Cache
}

// NotFoundError is a library that no search found.
type NotFoundError struct {
	Name       string // as in DT_NEEDED, after $ORIGIN etc. expansion
	NeededBy   string // Path of the object that needs it
	OtherClass bool   // a file of the wrong ELF class or machine was found
}

func (e *NotFoundError) Error() string {
	if e.OtherClass {
		return fmt.Sprintf("%s (needed by %s): not found (only for another ELF class or machine)", e.Name, e.NeededBy)
	}
	return fmt.Sprintf("%s (needed by %s): not found", e.Name, e.NeededBy)
}

// Closure returns the files needed to run the program at name (in root's
// view; relative to opts.Dir if not absolute): the program first, then
// its interpreter, then its libraries in load order. See the package doc
// for the search rules. If libraries are missing, the error joins one
// *NotFoundError per missing library (find them with errors.As) and the
// files are nil; any other problem is an error naming the file. Closure
// only reads; calls may run concurrently and share an Options.Cache
// (ReadCache once, not per program, if you run many).
func Closure(root, name string, opts Options) ([]File, error) {
	opts.Dir = path.Clean("/" + opts.Dir)
	c := &closure{root: root, opts: opts, seen: map[string]bool{}}
	if err := c.program(abs(opts.Dir, name), 0); err != nil {
		return nil, err
	}
	return c.files, nil
}

// closure accumulates the files of one program.
type closure struct {
	root  string
	opts  Options
	files []File
	seen  map[string]bool // Paths already in files
}

// add appends the File for name unless it is there already.
func (c *closure) add(name string, r resolved) {
	if c.seen[name] {
		return
	}
	c.seen[name] = true
	c.files = append(c.files, File{
		Path:  name,
		Real:  r.real,
		Links: r.links,
		Size:  r.info.Size(),
		Mode:  r.info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky),
	})
}

// open resolves name and checks it is a regular file. Its errors do not
// name the file: the caller does.
func (c *closure) open(name string) (resolved, error) {
	r, err := resolve(c.root, name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return resolved{}, pe.Err // "no such file or directory", whichever component
		}
		return resolved{}, err
	}
	if !r.info.Mode().IsRegular() {
		return resolved{}, fmt.Errorf("not a regular file (%v)", r.info.Mode().Type())
	}
	return r, nil
}

// maxScripts is how many #! interpreters Linux follows in one exec
// (BINPRM_MAX_RECURSION).
const maxScripts = 4

// program adds an executable's closure: an ELF program's, or a script's
// and its interpreter's. An error about name itself does not name it
// (Closure's caller names the program; an interpreter is named by the
// script's error): "/tmp/s: interpreter /no/sh: no such file or
// directory", not the path three times.
func (c *closure) program(name string, depth int) error {
	r, err := c.open(name)
	if err != nil {
		return err
	}
	f, err := openFile(c.root, r.real)
	if err != nil {
		return err
	}
	defer f.Close()
	var magic [4]byte
	n, _ := f.ReadAt(magic[:], 0)
	switch {
	case n >= 2 && string(magic[:2]) == "#!":
		if depth >= maxScripts {
			return errors.New("too many levels of #! interpreters")
		}
		c.add(name, r)
		interp, arg, err := shebang(f)
		if err != nil {
			return err
		}
		if err := c.program(abs(c.opts.Dir, interp), depth+1); err != nil {
			return fmt.Errorf("interpreter %s: %w", interp, err)
		}
		return c.env(interp, arg, depth)
	case n == 4 && string(magic[:]) == "\x7fELF":
		o, err := readObject(f)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errors.New("not a valid ELF file (truncated)")
		}
		if err != nil {
			return err
		}
		return c.elf(name, r, o)
	case depth == 0:
		// A script without #!: the kernel refuses it (ENOEXEC) and
		// execvp(3) and every shell run it with /bin/sh instead.
		c.add(name, r)
		c.files[len(c.files)-1].Shell = true
		return c.program(Shell, depth+1)
	}
	return errors.New("not an ELF file or a #! script")
}

// Shell runs a program that is neither an ELF file nor a #! script, as
// execvp(3) does: `Shell PROGRAM ARGS…`.
const Shell = "/bin/sh"

// NeedsShell reports whether the regular file at file is one the kernel
// refuses to run (neither ELF nor #!: ENOEXEC), which Shell must run
// instead (ShellArgv): what File.Shell says, for a program started
// where it is, without its closure. An unreadable file, or one that is
// not regular, is left to exec to report. A fifo does not block the
// look.
func NeedsShell(file string) bool {
	fd, err := unix.Open(file, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false
	}
	head := make([]byte, 4)
	n, err := unix.Pread(fd, head, 0)
	return err == nil && !bytes.HasPrefix(head[:n], []byte("#!")) && !bytes.HasPrefix(head[:n], []byte("\x7fELF"))
}

// ShellArgv is the command line that runs program path (argv its own)
// with Shell, as execvp(3) runs a file the kernel refuses.
func ShellArgv(path string, argv []string) []string {
	out := []string{Shell, path}
	if len(argv) > 1 {
		out = append(out, argv[1:]...)
	}
	return out
}

// env follows `#!/usr/bin/env NAME`: NAME is looked up on opts.Path and
// its closure added.
func (c *closure) env(interp, arg string, depth int) error {
	if c.opts.Path == "" || path.Base(interp) != "env" || !plainName(arg) {
		return nil
	}
	prog, err := lookPath(c.root, arg, c.opts)
	if err != nil {
		return fmt.Errorf("%s: %w", interp, err)
	}
	return c.program(prog, depth+1)
}

// elf adds an ELF program's closure.
func (c *closure) elf(name string, r resolved, o *object) error {
	c.add(name, r)
	if o.interp == "" {
		return nil // static: the kernel runs it directly, NEEDED or not
	}
	l := &loader{closure: c, arch: o.arch}
	return l.run(name, r, o)
}
