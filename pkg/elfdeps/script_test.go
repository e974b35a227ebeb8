package elfdeps

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestShebang(t *testing.T) {
	long := strings.Repeat("a", 300)
	for _, tt := range []struct {
		script, interp, arg, err string
	}{
		{script: "#!/bin/sh\n", interp: "/bin/sh"},
		{script: "#! /bin/sh -e\necho\n", interp: "/bin/sh", arg: "-e"},
		{script: "#!\t/usr/bin/env  python3 -u \t\n", interp: "/usr/bin/env", arg: "python3 -u"},
		{script: "#!/bin/sh", interp: "/bin/sh"}, // no newline, short file
		{script: "#!/bin/sh\x00junk\n", interp: "/bin/sh"},
		{script: "#!/bin/sh -x" + long, interp: "/bin/sh", arg: ("-x" + long)[:256-len("#!/bin/sh ")-1]},
		{script: "#!/" + long, err: "truncated"},
		{script: "#!   \n", err: "no interpreter"},
		{script: "#!", err: "no interpreter"},
	} {
		interp, arg, err := shebang(strings.NewReader(tt.script))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("shebang(%.20q) = %q, %q, %v; want error %q", tt.script, interp, arg, err, tt.err)
			}
			continue
		}
		if interp != tt.interp || arg != tt.arg || err != nil {
			t.Errorf("shebang(%.20q) = %q, %q, %v; want %q, %q", tt.script, interp, arg, err, tt.interp, tt.arg)
		}
	}
}

func TestLookPath(t *testing.T) {
	root := writeTree(t, map[string]any{
		"/usr/bin/tool":   "#!/bin/sh\n",
		"/opt/bin/tool":   "#!/bin/sh\n",
		"/opt/bin/noexec": "#!/bin/sh\n",
		"/usr/bin/adir":   dir{},
		"/home/u/bin/own": "#!/bin/sh\n",
	})
	if err := os.Chmod(filepath.Join(root, "/opt/bin/noexec"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		file string
		opts Options
		want string // "" for exec.ErrNotFound
	}{
		{"tool", Options{Path: "/usr/bin:/opt/bin"}, "/usr/bin/tool"},
		{"tool", Options{Path: "/nope:/opt/bin:/usr/bin"}, "/opt/bin/tool"},
		{"noexec", Options{Path: "/opt/bin"}, ""},
		{"adir", Options{Path: "/usr/bin"}, ""},
		{"own", Options{Path: "bin", Dir: "/home/u"}, "/home/u/bin/own"},
		{"own", Options{Path: ":/usr/bin", Dir: "/home/u/bin"}, "/home/u/bin/own"},
		{"bin/own", Options{Dir: "/home/u"}, "/home/u/bin/own"},
		{"/opt/bin/tool", Options{}, "/opt/bin/tool"},
		{"missing", Options{Path: "/usr/bin"}, ""},
	} {
		got, err := LookPath(root, tt.file, tt.opts)
		if tt.want == "" {
			if !errors.Is(err, exec.ErrNotFound) && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("LookPath(%q, %+v) = %q, %v; want not found", tt.file, tt.opts, got, err)
			}
			continue
		}
		if got != tt.want || err != nil {
			t.Errorf("LookPath(%q, %+v) = %q, %v; want %q", tt.file, tt.opts, got, err, tt.want)
		}
	}
}
