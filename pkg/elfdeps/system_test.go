package elfdeps

import (
	"bufio"
	"bytes"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ldd lists the libraries ldd finds for prog, by path, without the vDSO.
// ok is false if ldd is missing or fails on prog.
func ldd(t *testing.T, prog string) (libs []string, ok bool) {
	t.Helper()
	path, err := exec.LookPath("ldd")
	if err != nil {
		return nil, false
	}
	return loaderList(exec.Command(path, prog))
}

// traced lists the libraries glibc's loader maps for prog when the kernel
// starts it (LD_TRACE_LOADED_OBJECTS makes ld.so print them and exit
// before any of prog's code runs). Unlike ldd, which starts the loader
// itself, this gives the program's $ORIGIN as a real exec does: ldd
// misses the JDK's libjli.so, found through a symlinked /usr/bin/java and
// RPATH $ORIGIN/../lib.
func traced(prog string) (libs []string, ok bool) {
	cmd := exec.Command(prog)
	cmd.Env = []string{"LD_TRACE_LOADED_OBJECTS=1"}
	return loaderList(cmd)
}

// loaderList runs cmd with no LD_ variables but those it set, and parses
// ld.so's trace: "name => path (0x…)" or "path (0x…)" lines.
func loaderList(cmd *exec.Cmd) (libs []string, ok bool) {
	env := cmd.Env
	for _, kv := range os.Environ() { // the loader must see what Closure sees
		if !strings.HasPrefix(kv, "LD_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return nil, false
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.LastIndex(line, " (0x"); i >= 0 {
			line = line[:i]
		}
		if _, p, ok := strings.Cut(line, " => "); ok {
			line = p
		}
		if strings.HasPrefix(line, "/") {
			libs = append(libs, line)
		}
	}
	return libs, true
}

// sameSet compares Closure's files for prog, minus prog itself, with a
// loader's list, as sets (the loader lists the interpreter last).
func sameSet(t *testing.T, prog, who string, files []File, want []string) {
	t.Helper()
	got := paths(files)[1:]
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\n%s %q", prog, got, who, want)
	}
}

func TestSystemPrograms(t *testing.T) {
	for _, prog := range []string{"/bin/ls", "/usr/bin/ssh"} {
		t.Run(prog, func(t *testing.T) {
			if _, err := os.Stat(prog); err != nil {
				t.Skip(err)
			}
			files, err := Closure("/", prog, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if files[0].Path != prog {
				t.Errorf("first file %q, want the program %q", files[0].Path, prog)
			}
			if len(files) < 3 {
				t.Errorf("got %q, want at least program, interpreter and libc", paths(files))
			}
			for _, f := range files {
				fi, err := os.Lstat(f.Real)
				if err != nil || !fi.Mode().IsRegular() || fi.Size() != f.Size || fi.Mode().Perm() != f.Mode.Perm() {
					t.Errorf("%s: Real %s: %v, %v; file says size %d mode %v", f.Path, f.Real, fi, err, f.Size, f.Mode)
				}
				if real, err := filepath.EvalSymlinks(f.Path); err != nil || real != f.Real {
					t.Errorf("%s: EvalSymlinks = %q, %v; Real = %q", f.Path, real, err, f.Real)
				}
			}
			if want, ok := ldd(t, prog); ok {
				sameSet(t, prog, "ldd", files, want)
			}
		})
	}
}

// TestSystemSweep compares Closure with glibc's own trace on up to 60
// dynamic programs spread over /usr/bin, and readObject with debug/elf's
// view of them.
func TestSystemSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	self, err := Closure("/", "/bin/ls", Options{})
	if err != nil || len(self) < 2 {
		t.Skipf("no dynamic /bin/ls: %v", err)
	}
	glibc := self[1].Path // only programs for this loader honour LD_TRACE_LOADED_OBJECTS
	entries, err := os.ReadDir("/usr/bin")
	if err != nil {
		t.Skip(err)
	}
	var progs []string
	for _, e := range entries {
		prog := filepath.Join("/usr/bin", e.Name())
		if fi, err := os.Stat(prog); err != nil || fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
			continue // a setuid program may ignore the trace variable and run
		}
		f, err := elf.Open(prog)
		if err != nil {
			continue
		}
		interp := ""
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				b, _ := io.ReadAll(p.Open())
				interp = strings.TrimRight(string(b), "\x00")
			}
		}
		f.Close()
		if interp == glibc {
			progs = append(progs, prog)
		}
	}
	const most = 60
	step := max(1, len(progs)/most)
	n := 0
	for i := 0; i < len(progs); i += step {
		prog := progs[i]
		n++
		f, err := elf.Open(prog)
		if err != nil {
			t.Fatal(err)
		}
		needed, _ := f.DynString(elf.DT_NEEDED)
		f.Close()
		fh, err := os.Open(prog)
		if err != nil {
			t.Fatal(err)
		}
		o, err := readObject(fh)
		fh.Close()
		if err != nil {
			t.Errorf("%s: readObject: %v", prog, err)
			continue
		}
		if !slices.Equal(o.needed, needed) {
			t.Errorf("%s: needed %q, debug/elf says %q", prog, o.needed, needed)
		}
		want, ok := traced(prog)
		files, err := Closure("/", prog, Options{})
		switch {
		case err != nil && ok:
			t.Errorf("%s: %v (ld.so manages)", prog, err)
		case err == nil && ok:
			sameSet(t, prog, "ld.so", files, want)
		}
	}
	t.Logf("%d of %d programs compared", n, len(progs))
}
