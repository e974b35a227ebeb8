// Package modindex reads and writes the kernel's module index: the text
// files depmod leaves in /lib/modules/RELEASE, and the names modules go
// by. Both ends of the node's modules use it: the boot image builder
// (initramfs) reads the master's index to pick the modules a node needs
// and writes the initrd's own, smaller index naming only those; the
// node's init (pkg/pid1) reads that index back to load them.
//
// The files, as depmod writes them:
//
//	modules.dep      "PATH: DEP DEP …" per module; paths relative to
//	                 the module tree, a module's dependencies on its line
//	modules.builtin  one PATH per line: modules compiled into the kernel
//	modules.alias    "alias PATTERN MODULE": a shell pattern over a
//	                 device's modalias, and the module that drives it
//
// A module is named as the kernel names it (/proc/modules, modules.alias):
// its file's base name without .ko and compression suffix, '-' spelled
// '_' (Name). The loading itself is u-root's kmodule's (finit_module);
// this package only reads and writes the index. It reads the text files,
// not depmod's .bin tries: the builder writes only the text ones.
package modindex

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
)

// Name is the canonical name of a module file or module: base name
// without .ko and compression suffix (.xz, .zst, .gz), '-' spelled '_'.
func Name(p string) string {
	b := path.Base(p)
	for _, s := range []string{".xz", ".zst", ".gz"} {
		b = strings.TrimSuffix(b, s)
	}
	b = strings.TrimSuffix(b, ".ko")
	return strings.ReplaceAll(b, "-", "_")
}

// maxLine bounds one line of an index file (a modules.dep line lists
// every dependency of its module).
const maxLine = 1024 * 1024

// Graph is a modules.dep: module paths, each with the paths it depends
// on, in the order they were added. The zero Graph is empty and ready
// to use.
type Graph struct {
	deps  map[string][]string
	order []string            // paths in file order
	names map[string][]string // Name → paths
}

// Add appends a module path and its dependencies. An empty, absolute or
// ".."-escaping path, or a path added twice, is an error.
func (g *Graph) Add(mod string, deps []string) error {
	if err := checkPath(mod); err != nil {
		return err
	}
	if _, dup := g.deps[mod]; dup {
		return fmt.Errorf("%s listed twice", mod)
	}
	for _, d := range deps {
		if err := checkPath(d); err != nil {
			return err
		}
	}
	if g.deps == nil {
		g.deps, g.names = map[string][]string{}, map[string][]string{}
	}
	g.deps[mod] = deps
	g.order = append(g.order, mod)
	n := Name(mod)
	g.names[n] = append(g.names[n], mod)
	return nil
}

func checkPath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("bad module path %q", p)
	}
	return nil
}

// Paths returns the module paths in file order.
func (g *Graph) Paths() []string { return slices.Clone(g.order) }

// Deps returns the paths mod depends on, as its line lists them.
func (g *Graph) Deps(mod string) []string { return slices.Clone(g.deps[mod]) }

// WriteTo writes g as modules.dep, one line per module in file order.
func (g *Graph) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	for _, p := range g.order {
		b.WriteString(p)
		b.WriteString(":")
		for _, d := range g.deps[p] {
			b.WriteString(" ")
			b.WriteString(d)
		}
		b.WriteString("\n")
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// ParseDeps reads a modules.dep. Blank lines are skipped; a line without
// a colon, or one Add refuses, is an error.
func ParseDeps(r io.Reader) (*Graph, error) {
	g := &Graph{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxLine)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" {
			continue
		}
		mod, rest, ok := strings.Cut(t, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: no colon", line)
		}
		if err := g.Add(strings.TrimSpace(mod), strings.Fields(rest)); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return g, nil
}

// ReadDeps reads the modules.dep file (see ParseDeps). A missing file's
// error satisfies errors.Is(err, fs.ErrNotExist).
func ReadDeps(file string) (*Graph, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	g, err := ParseDeps(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return g, nil
}

// ParseBuiltin reads a modules.builtin (one module path per line) into
// a set of names.
func ParseBuiltin(r io.Reader) (map[string]bool, error) {
	set := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxLine)
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			set[Name(t)] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return set, nil
}

// Only returns the module paths of g that only names need: the closure
// of names (those g has) less every module some other module of g
// depends on, in file order. Init leaves these for when a mount asks
// (names: the file systems' modules), and the boot image builder
// prepares them for that (initramfs).
func (g *Graph) Only(names []string) ([]string, error) {
	mine, _, err := g.Closure(names, nil)
	if err != nil {
		return nil, err
	}
	in := map[string]bool{}
	for _, p := range mine {
		in[p] = true
	}
	var others []string
	for _, p := range g.order {
		if !in[p] {
			others = append(others, p)
		}
	}
	need, _, err := g.Closure(others, nil)
	if err != nil {
		return nil, err
	}
	for _, p := range need {
		delete(in, p)
	}
	var out []string
	for _, p := range g.order {
		if in[p] {
			out = append(out, p)
		}
	}
	return out, nil
}

// Closure returns the module paths needed to load names, dependencies
// first (a module comes after everything it depends on), ties in file
// order so the result does not depend on map order. Names in builtin
// (built into the kernel) are skipped; a name neither in g nor built in
// is returned in missing. A dependency cycle, or a dependency without
// its own line, is an error.
func (g *Graph) Closure(names []string, builtin map[string]bool) (paths, missing []string, err error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	pos := map[string]int{}
	for i, p := range g.order {
		pos[p] = i
	}
	var visit func(p string, stack []string) error
	visit = func(p string, stack []string) error {
		switch state[p] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(stack, p), " → "))
		}
		deps, ok := g.deps[p]
		if !ok {
			return fmt.Errorf("%s: dependency not listed in modules.dep", p)
		}
		state[p] = visiting
		sorted := slices.Clone(deps)
		slices.SortStableFunc(sorted, func(a, b string) int { return pos[a] - pos[b] })
		for _, d := range sorted {
			if err := visit(d, append(stack, p)); err != nil {
				return err
			}
		}
		state[p] = done
		paths = append(paths, p)
		return nil
	}
	for _, n := range names {
		c := Name(n)
		ps := g.names[c]
		if len(ps) == 0 {
			if !builtin[c] {
				missing = append(missing, n)
			}
			continue
		}
		if err := visit(ps[0], nil); err != nil {
			return nil, nil, err
		}
	}
	return paths, missing, nil
}
