package mpi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/beo-cluster/beo/pkg/atomicfile"
)

// The marker lines of the block Install writes.
const (
	BeginMarker = "# BEGIN beo — written by `beo master -mpi`, removed when it stops; edits inside are lost"
	EndMarker   = "# END beo"
	beginPrefix = "# BEGIN beo"
)

// ErrMarkers reports a file whose beo block is broken (a BEGIN without an
// END, or two blocks); the file is left alone.
var ErrMarkers = errors.New("unbalanced beo marker lines")

// System is where the installed MPIs read their system-wide settings;
// an empty path means that MPI is not installed (or its file not found).
type System struct {
	OpenMPI string // OpenMPI's parameter file: SYSCONFDIR/openmpi-mca-params.conf
	Hydra   string // hydra's config file, as compiled into mpiexec.hydra
}

// FindSystem finds the installed MPIs' system-wide settings files:
// OpenMPI's sysconfdir from `ompi_info --path sysconfdir --parsable`,
// hydra's config path from the string compiled into mpiexec.hydra.
func FindSystem(ctx context.Context) System {
	var s System
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ompi_info", "--path", "sysconfdir", "--parsable").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if dir, ok := strings.CutPrefix(strings.TrimSpace(line), "path:sysconfdir:"); ok && strings.HasPrefix(dir, "/") {
				s.OpenMPI = filepath.Join(dir, "openmpi-mca-params.conf")
			}
		}
	}
	if p, err := exec.LookPath("mpiexec.hydra"); err == nil {
		if data, err := os.ReadFile(p); err == nil {
			s.Hydra = hydraConfPath(data)
		}
	}
	return s
}

// hydraConfPath finds the absolute path of mpiexec.hydra.conf among the
// NUL-terminated strings of hydra's binary.
func hydraConfPath(bin []byte) string {
	const name = "/mpiexec.hydra.conf"
	for off := 0; ; {
		i := bytes.Index(bin[off:], []byte(name+"\x00"))
		if i < 0 {
			return ""
		}
		end := off + i + len(name)
		start := bytes.LastIndexByte(bin[:end], 0) + 1
		if s := string(bin[start:end]); strings.HasPrefix(s, "/") && !strings.ContainsAny(s, "%\n") {
			return s
		}
		off = end
	}
}

// Install writes f's settings as the beo block of each of sys's files
// (created if missing), and returns the files it changed.
func Install(f *Files, sys System) ([]string, error) {
	var changed []string
	var errs []error
	for _, t := range []struct {
		path  string
		block []byte
	}{{sys.OpenMPI, f.ParamsText()}, {sys.Hydra, f.HydraText()}} {
		if t.path == "" {
			continue
		}
		ok, err := edit(t.path, func(src []byte) ([]byte, error) { return setBlock(src, t.block) })
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			changed = append(changed, t.path)
		}
	}
	return changed, errors.Join(errs...)
}

// Remove takes the beo block that f's Install wrote (one naming f's
// beorsh: another master's, such as a real head node's seen from a beo
// lab, is left alone) out of each of sys's files, and returns the files
// it changed. A file that held only the block is removed.
func Remove(f *Files, sys System) ([]string, error) {
	var changed []string
	var errs []error
	for _, p := range []string{sys.OpenMPI, sys.Hydra} {
		if p == "" {
			continue
		}
		ok, err := edit(p, func(src []byte) ([]byte, error) {
			begin, end, err := block(src)
			if err != nil || begin < 0 || !bytes.Contains(src[begin:end], []byte(f.Agent())) {
				return src, err
			}
			return removeBlock(src)
		})
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			changed = append(changed, p)
		}
	}
	return changed, errors.Join(errs...)
}

// edit rewrites path with fn's result when it differs; a missing file
// reads as empty, and an empty result removes the file.
func edit(path string, fn func([]byte) ([]byte, error)) (bool, error) {
	src, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	existed := err == nil
	out, err := fn(src)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if bytes.Equal(out, src) {
		return false, nil
	}
	if len(out) == 0 {
		if existed {
			return true, os.Remove(path)
		}
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	return true, atomicfile.WriteFile(path, out, atomicfile.Perm(path, 0o644))
}

// block finds the beo block: the byte offsets of its BEGIN line's start
// and of the end of its END line (-1, -1: none).
func block(src []byte) (begin, end int, err error) {
	begin, end = -1, -1
	for off := 0; off < len(src); {
		n := bytes.IndexByte(src[off:], '\n')
		next := len(src)
		if n >= 0 {
			next = off + n + 1
		}
		t := strings.TrimRight(string(src[off:next]), " \t\r\n")
		switch {
		case strings.HasPrefix(t, beginPrefix):
			if begin >= 0 {
				return 0, 0, ErrMarkers
			}
			begin = off
		case t == EndMarker:
			if begin < 0 || end >= 0 {
				return 0, 0, ErrMarkers
			}
			end = next
		}
		off = next
	}
	if begin >= 0 && end < 0 {
		return 0, 0, ErrMarkers
	}
	return begin, end, nil
}

// setBlock returns src with its beo block replaced by (or, without one,
// followed by) text between the markers.
func setBlock(src, text []byte) ([]byte, error) {
	begin, end, err := block(src)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(BeginMarker + "\n")
	b.Write(text)
	if len(text) > 0 && text[len(text)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteString(EndMarker + "\n")
	var out []byte
	if begin < 0 {
		out = append(out, src...)
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		return append(out, b.Bytes()...), nil
	}
	out = append(out, src[:begin]...)
	out = append(out, b.Bytes()...)
	return append(out, src[end:]...), nil
}

// removeBlock returns src without its beo block.
func removeBlock(src []byte) ([]byte, error) {
	begin, end, err := block(src)
	if err != nil || begin < 0 {
		return src, err
	}
	return append(append([]byte(nil), src[:begin]...), src[end:]...), nil
}
