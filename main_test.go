package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/applets"
)

func TestPick(t *testing.T) {
	for _, tc := range []struct {
		argv     []string
		name     string
		wantArgs []string
	}{
		{[]string{"/usr/bin/bpsh", "3", "date"}, "bpsh", []string{"3", "date"}},
		{[]string{"beo", "bpstat", "-l"}, "bpstat", []string{"-l"}},
		{[]string{"./beo"}, "", nil},
		{[]string{"beo", "nosuch"}, "nosuch", []string{}},
	} {
		name, args := pick(tc.argv)
		if name != tc.name || strings.Join(args, " ") != strings.Join(tc.wantArgs, " ") {
			t.Errorf("pick(%q) = %q %q, want %q %q", tc.argv, name, args, tc.name, tc.wantArgs)
		}
	}
}

func runArgs(argv ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(argv, applets.IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestListAndUnknown(t *testing.T) {
	code, out, _ := runArgs("beo")
	if code != 0 || !strings.Contains(out, "bpsh ") || !strings.Contains(out, "version ") {
		t.Errorf("beo alone: code %d, out %q; want 0 and the applet list", code, out)
	}
	for _, h := range []string{"help", "-h", "--help"} {
		if code, out, _ := runArgs("beo", h); code != 0 || !strings.Contains(out, "bpsh ") {
			t.Errorf("beo %s: code %d, out %q; want 0 and the applet list", h, code, out)
		}
	}
	code, _, errs := runArgs("beo", "frobnicate")
	if code != 2 || !strings.Contains(errs, "usage") {
		t.Errorf("unknown applet: code %d, stderr %q; want 2 and usage", code, errs)
	}
	code, _, errs = runArgs("beo", "version", "extra")
	if code != 2 || !strings.Contains(errs, "usage: beo version") {
		t.Errorf("bad args: code %d, stderr %q; want 2 and the usage line", code, errs)
	}
}

// TestFlagErrors: every applet says what was wrong with its flags and
// its usage line once (exit 2); -h lists the flags and exits 0.
func TestFlagErrors(t *testing.T) {
	for _, name := range names() {
		if name == "beoclient" {
			continue // no flags: only PID 1 runs
		}
		code, _, errs := runArgs(name, "-no-such-flag")
		if code != 2 || !strings.Contains(errs, "-no-such-flag") || strings.Count(errs, "usage:") != 1 {
			t.Errorf("%s -no-such-flag: code %d, stderr %q; want 2, the flag named and one usage line", name, code, errs)
		}
	}
	code, _, errs := runArgs("bpsh", "-h")
	if code != 0 || strings.Count(errs, "usage: bpsh") != 1 || !strings.Contains(errs, "-p\t") {
		t.Errorf("bpsh -h: code %d, stderr %q; want 0, the usage line once and the flags", code, errs)
	}
}

func TestInstallLinks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home", "bin") // missing: created
	t.Setenv("PATH", "/usr/bin:/bin")
	code, _, errs := runArgs("beo", "install-links", dir)
	if code != 0 || !strings.Contains(errs, "is not on $PATH; to use the links: export PATH="+dir+":$PATH") {
		t.Errorf("first run: code %d, stderr %q; want 0 and a hint to put the directory on PATH", code, errs)
	}
	for _, n := range []string{"beo", "bpsh", "bpslave"} {
		fi, err := os.Lstat(filepath.Join(dir, n))
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s link: %v, %v", n, fi, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "version")); err == nil {
		t.Errorf("version got a link; only user commands should")
	}
	// Again, on PATH, with a regular file in the way.
	t.Setenv("PATH", dir+":/usr/bin")
	os.Remove(filepath.Join(dir, "bpsh"))
	if err := os.WriteFile(filepath.Join(dir, "bpsh"), []byte("not ours"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runArgs("beo", "install-links", dir)
	if code != 1 || !strings.Contains(errs, "not a symlink") || strings.Contains(errs, "not on $PATH") {
		t.Errorf("code %d, stderr %q; want 1, a refusal to replace a regular file and no PATH hint", code, errs)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "bpsh")); string(b) != "not ours" {
		t.Errorf("a regular file was overwritten")
	}
	// The binary itself in DIR (beo installed there) is no conflict.
	self, _ := os.Executable()
	os.Remove(filepath.Join(dir, "bpsh"))
	os.Remove(filepath.Join(dir, "beo"))
	if err := os.Link(self, filepath.Join(dir, "beo")); err == nil {
		if code, _, errs = runArgs("beo", "install-links", dir); code != 0 {
			t.Errorf("with the binary itself as DIR/beo: code %d, stderr %q; want 0", code, errs)
		}
	}
	// -h is help, not a directory.
	wd, _ := os.Getwd()
	if code, _, errs = runArgs("beo", "install-links", "-h"); code != 0 || !strings.Contains(errs, "usage: beo install-links DIR") {
		t.Errorf("install-links -h: code %d, stderr %q; want 0 and the usage line", code, errs)
	}
	if _, err := os.Lstat(filepath.Join(wd, "-h")); err == nil {
		os.RemoveAll(filepath.Join(wd, "-h"))
		t.Errorf("install-links -h made a directory -h")
	}
	if code, _, _ = runArgs("beo", "install-links"); code != 2 {
		t.Errorf("install-links without DIR: code %d, want 2", code)
	}
}

func TestInitDispatch(t *testing.T) {
	for _, tc := range []struct {
		argv     []string
		pid      int
		name     string
		wantArgs []string
	}{
		{[]string{"/init"}, 1, "beoclient", nil},
		{[]string{"/init", "single"}, 1, "beoclient", []string{"single"}},
		{[]string{"/sbin/init"}, 4242, "beoclient", nil},
		{[]string{"/bin/beo"}, 1, "beoclient", nil}, // exec'd by switch_root
		{[]string{"/bin/beo", "quiet"}, 1, "beoclient", []string{"quiet"}},
		{[]string{"/bin/beo", "master"}, 1, "master", nil}, // a container's PID 1
		{[]string{"/bin/bpslave", "-m", "x"}, 1, "bpslave", []string{"-m", "x"}},
		{[]string{"/bin/beo"}, 4242, "", nil},
		{[]string{"beo", "beoclient"}, 4242, "beoclient", nil},
	} {
		name, args := pickAs(tc.argv, tc.pid)
		if name != tc.name || strings.Join(args, " ") != strings.Join(tc.wantArgs, " ") {
			t.Errorf("pickAs(%q, %d) = %q %q, want %q %q", tc.argv, tc.pid, name, args, tc.name, tc.wantArgs)
		}
	}
	code, _, errs := runArgs("beo", "beoclient")
	if code != 2 || !strings.Contains(errs, "not PID 1") {
		t.Errorf("beoclient by hand: code %d, stderr %q; want 2 and a refusal", code, errs)
	}
}

// TestArchitectureDoc: every package and file docs/ARCHITECTURE.md names
// exists, so the map cannot rot.
func TestArchitectureDoc(t *testing.T) {
	b, err := os.ReadFile("docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile(`\b(?:pkg/[a-z0-9]+(?:/[a-z0-9_]+\.go)?|applets/[a-z0-9]+/[a-z0-9_]+\.go|initramfs(?:/[a-z0-9_]+\.go)?|main_test\.go|main\.go)\b`)
	seen := map[string]bool{}
	for _, p := range named.FindAllString(string(b), -1) {
		if seen[p] {
			continue
		}
		seen[p] = true
		if _, err := os.Stat(p); err != nil {
			t.Errorf("docs/ARCHITECTURE.md names %s: %v", p, err)
		}
	}
	if len(seen) < 40 {
		t.Errorf("only %d paths found in docs/ARCHITECTURE.md: the pattern is broken", len(seen))
	}
	// Every package has a row in the map.
	dirs, _ := os.ReadDir("pkg")
	for _, d := range dirs {
		if d.IsDir() && !seen["pkg/"+d.Name()] {
			t.Errorf("pkg/%s is not in docs/ARCHITECTURE.md", d.Name())
		}
	}
}
