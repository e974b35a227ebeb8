package elfdeps

import (
	"debug/elf"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Fixture tree entries: an elfSpec is written as an ELF file (0755), a
// symlink as a link, a string as a file (0755, for scripts and junk), a
// []CacheEntry as an ld.so.cache, a dir as a directory.
type (
	symlink string
	dir     struct{}
)

func writeTree(t *testing.T, tree map[string]any) string {
	t.Helper()
	root := t.TempDir()
	for _, name := range slices.Sorted(maps.Keys(tree)) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch v := tree[name].(type) {
		case elfSpec:
			err = os.WriteFile(p, v.bytes(), 0o755)
		case symlink:
			err = os.Symlink(string(v), p)
		case string:
			err = os.WriteFile(p, []byte(v), 0o755)
		case []CacheEntry:
			err = os.WriteFile(p, encodeCache(sortCache(v), false, false), 0o644)
		case dir:
			err = os.MkdirAll(p, 0o755)
		default:
			t.Fatalf("%s: unknown fixture %T", name, v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const (
	ld    = "/lib64/ld-linux-x86-64.so.2"
	multi = "/lib/x86_64-linux-gnu"
	libc  = multi + "/libc.so.6"
)

// baseTree is a tiny Debian-like x86-64 system: interpreter (reached by a
// /lib64 symlink), libc, and /bin/sh.
func baseTree() map[string]any {
	return map[string]any{
		multi + "/ld-linux-x86-64.so.2": elfSpec{soname: "ld-linux-x86-64.so.2"},
		ld:                              symlink(multi + "/ld-linux-x86-64.so.2"),
		libc:                            lib("libc.so.6", "ld-linux-x86-64.so.2"),
		"/bin/sh":                       prog("libc.so.6"),
		"/usr/bin/env":                  prog("libc.so.6"),
	}
}

func prog(needed ...string) elfSpec { return elfSpec{interp: ld, needed: needed} }

func lib(soname string, needed ...string) elfSpec {
	return elfSpec{soname: soname, needed: needed}
}

func with(s elfSpec, f func(*elfSpec)) elfSpec { f(&s); return s }

func TestClosure(t *testing.T) {
	libA := lib("libA.so.1", "libc.so.6")
	for _, tt := range []struct {
		name    string
		tree    map[string]any
		prog    string
		opts    Options
		want    []string // Paths, in order
		wantErr string
		missing []string // NotFoundError names
	}{
		{
			name: "default directories",
			tree: map[string]any{"/bin/prog": prog("libc.so.6")},
			prog: "/bin/prog",
			want: []string{"/bin/prog", ld, libc},
		},
		{
			name: "relative program name from Dir",
			tree: map[string]any{"/home/u/prog": prog("libc.so.6")},
			prog: "prog",
			opts: Options{Dir: "/home/u"},
			want: []string{"/home/u/prog", ld, libc},
		},
		{
			name: "libc's NEEDED ld.so is the interpreter, by soname",
			tree: map[string]any{"/bin/prog": prog("libA.so.1", "libc.so.6"), multi + "/libA.so.1": libA},
			prog: "/bin/prog",
			want: []string{"/bin/prog", ld, multi + "/libA.so.1", libc},
		},
		{
			name: "rpath with $ORIGIN",
			tree: map[string]any{
				"/opt/app/bin/prog":      with(prog("libA.so.1"), func(s *elfSpec) { s.rpath = "$ORIGIN/../lib" }),
				"/opt/app/lib/libA.so.1": libA,
			},
			prog: "/opt/app/bin/prog",
			want: []string{"/opt/app/bin/prog", ld, "/opt/app/bin/../lib/libA.so.1", libc},
		},
		{
			name: "program's $ORIGIN is its resolved directory",
			tree: map[string]any{
				"/usr/bin/prog":          symlink("/opt/app/bin/prog"),
				"/opt/app/bin/prog":      with(prog("libA.so.1"), func(s *elfSpec) { s.rpath = "${ORIGIN}/../lib" }),
				"/opt/app/lib/libA.so.1": libA,
			},
			prog: "/usr/bin/prog",
			want: []string{"/usr/bin/prog", ld, "/opt/app/bin/../lib/libA.so.1", libc},
		},
		{
			name: "rpath is inherited by dependencies",
			tree: map[string]any{
				"/bin/prog":          with(prog("libA.so.1"), func(s *elfSpec) { s.rpath = "/opt/r" }),
				"/opt/r/libA.so.1":   lib("libA.so.1", "libB.so.1"),
				"/opt/r/libB.so.1":   lib("libB.so.1"),
				multi + "/libB.so.1": lib("libB.so.1"), // later in the order
			},
			prog: "/bin/prog",
			want: []string{"/bin/prog", ld, "/opt/r/libA.so.1", "/opt/r/libB.so.1"},
		},
		{
			name: "runpath is not inherited",
			tree: map[string]any{
				"/bin/prog":        with(prog("libA.so.1"), func(s *elfSpec) { s.runpath = "/opt/r" }),
				"/opt/r/libA.so.1": lib("libA.so.1", "libB.so.1"),
				"/opt/r/libB.so.1": lib("libB.so.1"),
			},
			prog:    "/bin/prog",
			wantErr: "libB.so.1 (needed by /opt/r/libA.so.1): not found",
			missing: []string{"libB.so.1"},
		},
		{
			name: "runpath disables rpath",
			tree: map[string]any{
				"/bin/prog": with(prog("libA.so.1"), func(s *elfSpec) {
					s.rpath, s.runpath = "/opt/rp", "/opt/ru"
				}),
				"/opt/rp/libA.so.1": lib("libA.so.1"),
				"/opt/ru/libA.so.1": lib("libA.so.1"),
			},
			prog: "/bin/prog",
			want: []string{"/bin/prog", ld, "/opt/ru/libA.so.1"},
		},
		{
			name: "a runpath on the needing object hides its loaders' rpaths",
			tree: map[string]any{
				"/bin/prog":        with(prog("libA.so.1"), func(s *elfSpec) { s.rpath = "/opt/r" }),
				"/opt/r/libA.so.1": with(lib("libA.so.1", "libB.so.1"), func(s *elfSpec) { s.runpath = "/opt/empty" }),
				"/opt/r/libB.so.1": lib("libB.so.1"),
				"/opt/empty":       dir{},
			},
			prog:    "/bin/prog",
			missing: []string{"libB.so.1"},
		},
		{
			name: "rpath before LD_LIBRARY_PATH before defaults",
			tree: map[string]any{
				"/bin/prog":        with(prog("libX.so", "libY.so"), func(s *elfSpec) { s.rpath = "/opt/rp" }),
				"/opt/rp/libX.so":  lib("libX.so"),
				"/opt/llp/libX.so": lib("libX.so"),
				"/opt/llp/libY.so": lib("libY.so"),
				multi + "/libY.so": lib("libY.so"),
			},
			prog: "/bin/prog",
			opts: Options{LibraryPath: "/opt/llp"},
			want: []string{"/bin/prog", ld, "/opt/rp/libX.so", "/opt/llp/libY.so"},
		},
		{
			name: "LD_LIBRARY_PATH before runpath",
			tree: map[string]any{
				"/bin/prog":        with(prog("libX.so"), func(s *elfSpec) { s.runpath = "/opt/ru" }),
				"/opt/ru/libX.so":  lib("libX.so"),
				"/opt/llp/libX.so": lib("libX.so"),
			},
			prog: "/bin/prog",
			opts: Options{LibraryPath: "/opt/llp"},
			want: []string{"/bin/prog", ld, "/opt/llp/libX.so"},
		},
		{
			name: "LD_LIBRARY_PATH: ';' separates, empty is Dir, $ORIGIN is the program's",
			tree: map[string]any{
				"/opt/app/bin/prog":      prog("libA.so", "libB.so"),
				"/work/libA.so":          lib("libA.so"),
				"/opt/app/bin/l/libB.so": lib("libB.so"),
				"/opt/app/bin/l/libA.so": lib("libA.so"),
			},
			prog: "/opt/app/bin/prog",
			opts: Options{LibraryPath: "/nope;:$ORIGIN/l/", Dir: "/work"},
			want: []string{"/opt/app/bin/prog", ld, "/work/libA.so", "/opt/app/bin/l/libB.so"},
		},
		{
			name: "ld.so.cache before defaults; a stale entry falls through",
			tree: map[string]any{
				"/bin/prog":             prog("libA.so.1", "libB.so.1"),
				"/opt/cached/libA.so.1": libA,
				multi + "/libA.so.1":    libA,
				"/usr/lib/libB.so.1":    lib("libB.so.1"),
				"/etc/ld.so.cache": []CacheEntry{
					{Name: "libA.so.1", Path: "/opt/cached/libA.so.1", Flags: 0x0303},
					{Name: "libB.so.1", Path: "/opt/gone/libB.so.1", Flags: 0x0303},
				},
			},
			prog: "/bin/prog",
			want: []string{"/bin/prog", ld, "/opt/cached/libA.so.1", "/usr/lib/libB.so.1", libc},
		},
		{
			name: "other class and machine are skipped",
			tree: map[string]any{
				"/bin/prog":                           prog("libA.so.1", "libB.so.1"),
				multi + "/libA.so.1":                  elfSpec{class: elf.ELFCLASS32, machine: elf.EM_386, soname: "libA.so.1"},
				"/usr/lib/x86_64-linux-gnu/libA.so.1": lib("libA.so.1"),
				multi + "/libB.so.1":                  elfSpec{machine: elf.EM_AARCH64, soname: "libB.so.1"},
				"/lib64/libB.so.1":                    lib("libB.so.1"),
			},
			prog: "/bin/prog",
			want: []string{"/bin/prog", ld, "/usr/lib/x86_64-linux-gnu/libA.so.1", "/lib64/libB.so.1"},
		},
		{
			name: "only another class: not found, and said so",
			tree: map[string]any{
				"/bin/prog":          prog("libA.so.1"),
				multi + "/libA.so.1": elfSpec{class: elf.ELFCLASS32, machine: elf.EM_386},
			},
			prog:    "/bin/prog",
			wantErr: "only for another ELF class",
			missing: []string{"libA.so.1"},
		},
		{
			name: "a non-ELF file in the path is an error, as for ld.so",
			tree: map[string]any{
				"/bin/prog":          prog("libA.so.1"),
				multi + "/libA.so.1": "/* GNU ld script: the linker's, not the loader's */\nINPUT(libA.so.1.2)\n",
				"/usr/lib/libA.so.1": libA,
			},
			prog:    "/bin/prog",
			wantErr: multi + "/libA.so.1: invalid ELF header",
		},
		{
			name: "NEEDED with a slash is a path, DSTs expanded",
			tree: map[string]any{
				"/opt/app/bin/prog":            prog("$ORIGIN/plugins/libP.so", "libc.so.6"),
				"/opt/app/bin/plugins/libP.so": lib("libP.so"),
			},
			prog: "/opt/app/bin/prog",
			want: []string{"/opt/app/bin/prog", ld, "/opt/app/bin/plugins/libP.so", libc},
		},
		{
			name: "$LIB and $PLATFORM defaults",
			tree: map[string]any{
				"/bin/prog": with(prog("libA.so.1"), func(s *elfSpec) { s.rpath = "/opt/$LIB/${PLATFORM}" }),
				"/opt/lib/x86_64-linux-gnu/x86_64/libA.so.1": libA,
			},
			prog: "/bin/prog",
			want: []string{"/bin/prog", ld, "/opt/lib/x86_64-linux-gnu/x86_64/libA.so.1", libc},
		},
		{
			name: "$LIB and $PLATFORM from Options; unknown $VAR kept",
			tree: map[string]any{
				"/bin/prog":                       with(prog("libA.so.1"), func(s *elfSpec) { s.rpath = "/opt/$LIB/$PLATFORMX:/opt/$LIB/$PLATFORM" }),
				"/opt/lib64/haswell/libA.so.1":    libA,
				"/opt/lib64/$PLATFORMX/libA.so.1": libA,
			},
			prog: "/bin/prog",
			opts: Options{Lib: "lib64", Platform: "haswell"},
			want: []string{"/bin/prog", ld, "/opt/lib64/$PLATFORMX/libA.so.1", libc},
		},
		{
			name: "the same file under a second name is one object, two names",
			tree: map[string]any{
				"/bin/prog":            prog("libA.so.1", "/opt/alias/libA.so.1"),
				multi + "/libA.so.1":   libA,
				"/opt/alias/libA.so.1": symlink(multi + "/libA.so.1"),
			},
			prog: "/bin/prog",
			want: []string{"/bin/prog", ld, multi + "/libA.so.1", "/opt/alias/libA.so.1", libc},
		},
		{
			name: "DF_1_NODEFLIB skips the default directories",
			tree: map[string]any{
				"/bin/prog": with(prog("libc.so.6"), func(s *elfSpec) { s.flags1 = df1NoDefLib }),
			},
			prog:    "/bin/prog",
			missing: []string{"libc.so.6"},
		},
		{
			name: "DefaultDirs replace the built-in ones",
			tree: map[string]any{
				"/bin/prog":          prog("libA.so.1"),
				multi + "/libA.so.1": libA,
				"/sys/lib/libA.so.1": lib("libA.so.1"),
			},
			prog: "/bin/prog",
			opts: Options{DefaultDirs: []string{"/sys/lib/"}},
			want: []string{"/bin/prog", ld, "/sys/lib/libA.so.1"},
		},
		{
			name: "static program is just itself",
			tree: map[string]any{"/bin/static": elfSpec{typ: elf.ET_EXEC, static: true}},
			prog: "/bin/static",
			want: []string{"/bin/static"},
		},
		{
			name: "no PT_INTERP: NEEDED are never loaded",
			tree: map[string]any{"/bin/spie": elfSpec{needed: []string{"libnothere.so"}}},
			prog: "/bin/spie",
			want: []string{"/bin/spie"},
		},
		{
			name: "script: itself and its interpreter's closure",
			tree: map[string]any{"/usr/local/bin/s": "#! /bin/sh -e\necho hi\n"},
			prog: "/usr/local/bin/s",
			want: []string{"/usr/local/bin/s", "/bin/sh", ld, libc},
		},
		{
			name: "script run by a script",
			tree: map[string]any{
				"/usr/local/bin/s":      "#!/usr/local/bin/interp\n",
				"/usr/local/bin/interp": "#!/bin/sh\n",
			},
			prog: "/usr/local/bin/s",
			want: []string{"/usr/local/bin/s", "/usr/local/bin/interp", "/bin/sh", ld, libc},
		},
		{
			name: "env script follows NAME on Options.Path",
			tree: map[string]any{
				"/usr/local/bin/s": "#!/usr/bin/env tool\n",
				"/opt/bin/tool":    prog("libT.so", "libc.so.6"),
				"/opt/lib/libT.so": lib("libT.so"),
			},
			prog: "/usr/local/bin/s",
			opts: Options{Path: "/nope:/opt/bin", LibraryPath: "/opt/lib"},
			want: []string{"/usr/local/bin/s", "/usr/bin/env", ld, libc, "/opt/bin/tool", "/opt/lib/libT.so"},
		},
		{
			name: "env script without Options.Path: env only",
			tree: map[string]any{"/usr/local/bin/s": "#!/usr/bin/env tool\n"},
			prog: "/usr/local/bin/s",
			want: []string{"/usr/local/bin/s", "/usr/bin/env", ld, libc},
		},
		{
			name: "several missing libraries are all reported",
			tree: map[string]any{
				"/bin/prog":          prog("libX.so.1", "libA.so.1"),
				multi + "/libA.so.1": lib("libA.so.1", "libY.so.2"),
			},
			prog:    "/bin/prog",
			wantErr: "libY.so.2 (needed by " + multi + "/libA.so.1): not found",
			missing: []string{"libX.so.1", "libY.so.2"},
		},
		{
			name:    "missing interpreter",
			tree:    map[string]any{"/bin/prog": with(prog(), func(s *elfSpec) { s.interp = "/lib/ld-nope.so" })},
			prog:    "/bin/prog",
			wantErr: "interpreter",
		},
		{
			name: "a script without #! runs with /bin/sh, as execvp runs it",
			tree: map[string]any{"/home/u/job": "echo hello\n"},
			prog: "/home/u/job",
			want: []string{"/home/u/job", "/bin/sh", ld, libc},
		},
		{
			name:    "an interpreter that is no program",
			tree:    map[string]any{"/usr/local/bin/s": "#!/etc/motd\n", "/etc/motd": "hello\n"},
			prog:    "/usr/local/bin/s",
			wantErr: "/etc/motd: not an ELF file or a #! script",
		},
		{
			name:    "a truncated ELF file",
			tree:    map[string]any{"/bin/t": "\x7fELF\x02\x01\x01junk"},
			prog:    "/bin/t",
			wantErr: "not a valid ELF file (truncated)",
		},
		{
			name:    "a script whose interpreter is missing",
			tree:    map[string]any{"/bin/s": "#!/nonexistent/interp -x\n"},
			prog:    "/bin/s",
			wantErr: "interpreter /nonexistent/interp: no such file or directory",
		},
		{
			name:    "missing program",
			tree:    map[string]any{},
			prog:    "/bin/nope",
			wantErr: "no such file",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tree := baseTree()
			maps.Copy(tree, tt.tree)
			root := writeTree(t, tree)
			files, err := Closure(root, tt.prog, tt.opts)
			if tt.wantErr != "" || tt.missing != nil {
				if err == nil {
					t.Fatalf("Closure = %v, want error", paths(files))
				}
				if strings.Contains(err.Error(), tt.prog+":") {
					t.Errorf("error %q names the program, which the caller does", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
				}
				if files != nil {
					t.Errorf("files %v with error", paths(files))
				}
				if tt.missing != nil {
					if got := missingNames(err); !slices.Equal(got, tt.missing) {
						t.Errorf("missing %q, want %q", got, tt.missing)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Closure: %v", err)
			}
			if got := paths(files); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func paths(files []File) []string {
	var p []string
	for _, f := range files {
		p = append(p, f.Path)
	}
	return p
}

// missingNames lists the NotFoundErrors joined in err.
func missingNames(err error) []string {
	var names []string
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case *NotFoundError:
			names = append(names, e.Name)
		case interface{ Unwrap() []error }:
			for _, e := range e.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return names
}

// TestClosureFiles checks the fields the node needs to rebuild the files
// on a merged-/usr system: /lib and /lib64 are links into /usr.
func TestClosureFiles(t *testing.T) {
	ldReal := "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
	root := writeTree(t, map[string]any{
		"/lib":                                symlink("usr/lib"),
		"/lib64":                              symlink("usr/lib64"),
		"/bin":                                symlink("usr/bin"),
		"/usr/lib64/ld-linux-x86-64.so.2":     symlink(multi + "/ld-linux-x86-64.so.2"),
		ldReal:                                elfSpec{soname: "ld-linux-x86-64.so.2"},
		"/usr/lib/x86_64-linux-gnu/libc.so.6": lib("libc.so.6", "ld-linux-x86-64.so.2"),
		"/usr/lib/x86_64-linux-gnu/libz.so.1": symlink("libz.so.1.2.13"),
		"/usr/lib/x86_64-linux-gnu/libz.so.1.2.13": lib("libz.so.1", "libc.so.6"),
		"/usr/bin/prog": prog("libz.so.1", "libc.so.6"),
	})
	if err := os.Chmod(filepath.Join(root, "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := Closure(root, "/bin/prog", Options{})
	if err != nil {
		t.Fatal(err)
	}
	size := func(p string) int64 {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	want := []File{
		{Path: "/bin/prog", Real: "/usr/bin/prog", Links: []Symlink{{"/bin", "usr/bin"}}, Mode: 0o755},
		{Path: ld, Real: ldReal, Links: []Symlink{
			{"/lib64", "usr/lib64"},
			{"/usr/lib64/ld-linux-x86-64.so.2", multi + "/ld-linux-x86-64.so.2"},
			{"/lib", "usr/lib"},
		}, Mode: 0o755},
		{Path: multi + "/libz.so.1", Real: "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13", Links: []Symlink{
			{"/lib", "usr/lib"},
			{"/usr/lib/x86_64-linux-gnu/libz.so.1", "libz.so.1.2.13"},
		}, Mode: 0o644},
		{Path: libc, Real: "/usr/lib/x86_64-linux-gnu/libc.so.6", Links: []Symlink{{"/lib", "usr/lib"}}, Mode: 0o755},
	}
	if len(files) != len(want) {
		t.Fatalf("got %q, want %q", paths(files), paths(want))
	}
	for i, f := range files {
		w := want[i]
		w.Size = size(w.Real)
		if f.Path != w.Path || f.Real != w.Real || f.Size != w.Size || f.Mode != w.Mode || !slices.Equal(f.Links, w.Links) {
			t.Errorf("file %d:\n got %+v\nwant %+v", i, f, w)
		}
	}
}

func TestResolveStaysInRoot(t *testing.T) {
	root := writeTree(t, map[string]any{
		"/a/up":    symlink("../../../../etc"),
		"/a/abs":   symlink("/etc"),
		"/etc/x":   "x",
		"/a/loop1": symlink("loop2"),
		"/a/loop2": symlink("loop1"),
	})
	for _, tt := range []struct {
		name, want string
		err        error
	}{
		{"/a/up/x", "/etc/x", nil},
		{"/a/abs/x", "/etc/x", nil},
		{"/../../etc/x", "/etc/x", nil},
		{"/a/loop1", "", nil},
		{"/etc/x/y", "", nil},
		{"/nope", "", fs.ErrNotExist},
	} {
		r, err := resolve(root, tt.name)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("resolve(%q) = %q, want error", tt.name, r.real)
		case tt.want == "" && !notFound(err):
			t.Errorf("resolve(%q): %v, want a not-found kind of error", tt.name, err)
		case tt.err != nil && !errors.Is(err, tt.err):
			t.Errorf("resolve(%q): %v, want %v", tt.name, err, tt.err)
		case tt.want != "" && (err != nil || r.real != tt.want):
			t.Errorf("resolve(%q) = %q, %v; want %q", tt.name, r.real, err, tt.want)
		}
	}
}
