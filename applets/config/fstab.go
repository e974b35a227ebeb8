package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/fstab"
)

// checkFstab checks the fstab files beside the config file at path — the
// DIR/fstab every node reads and each DIR/fstab.N — printing each
// diagnostic to errw as "file:line: severity: message" and a line per
// file to out ("fstab FILE mounts=N", N the lines that mount). A file
// that cannot be read — not a regular file, or larger than
// config.MaxFileSize (config.ReadFile) — is an error. A
// fstab.NAME whose NAME is not a node number is named with a warning
// (no node reads it); so is a node number the config does not have. It
// returns the number of errors.
func checkFstab(path string, c *config.Config, opt fstab.Options, out, errw io.Writer) (nerr int) {
	base := filepath.Join(filepath.Dir(path), "fstab")
	files, _ := filepath.Glob(base + ".*")
	slices.SortFunc(files, func(a, b string) int { return nodeOf(base, a) - nodeOf(base, b) })
	for _, f := range append([]string{base}, files...) {
		if f != base {
			if n := nodeOf(base, f); n < 0 {
				fmt.Fprintf(errw, "%s: warning: not a node's fstab (%s.N): no node reads it\n", f, base)
				continue
			} else if n >= c.NodeCount() {
				fmt.Fprintf(errw, "%s: warning: the config has no node %d\n", f, n)
			}
		}
		data, err := config.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			fmt.Fprintf(errw, "%s: error: %s\n", f, strings.TrimPrefix(err.Error(), f+": "))
			nerr++
			continue
		}
		t, _ := fstab.ParseWith(f, data, opt)
		for _, d := range t.Diags() {
			fmt.Fprintf(errw, "%s:%d: %s: %s\n", d.File, d.Line, d.Severity, d.Msg)
			if d.Severity == config.Error {
				nerr++
			}
		}
		mounts := 0
		for _, e := range t.Entries {
			if e.Bad == "" && e.Auto() {
				mounts++
			}
		}
		fmt.Fprintf(out, "fstab %s mounts=%d\n", f, mounts)
	}
	return nerr
}

// nodeOf is N of base.N, -1 when the suffix is not a node number.
func nodeOf(base, f string) int {
	s := strings.TrimPrefix(f, base+".")
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strconv.Itoa(n) != s {
		return -1
	}
	return n
}
