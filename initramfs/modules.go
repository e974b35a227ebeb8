package initramfs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
)

// DefaultModules are the kernel modules every boot image carries, with
// their dependencies: the NICs of QEMU and common cluster hardware, the
// disk controllers a node's local storage uses, and the NFS client
// (NFSModules). Names may use - or _. Modules the kernel has built in
// (modules.builtin) are skipped.
func DefaultModules() []string {
	return append([]string{
		"virtio_pci", "virtio_net", "e1000", "e1000e", "igb",
		"virtio_blk", "ahci", "sd_mod", "nvme",
	}, NFSModules()...)
}

// NFSModules are the NFS client, for the fstab's nfs and nfs4 lines:
// nfsv4 and nfsv3 bring sunrpc, grace, lockd, netfs, fscache, nfs,
// nfs_acl and dns_resolver. A node loads them only when it mounts NFS
// (pid1.LoadModules), or in the background once it runs. Debian 6.1's
// are 10 files, 5.6 MB: the lz4 initrd grows from 7.7 to 9.4 MB.
func NFSModules() []string { return []string{"nfsv4", "nfsv3"} }

// depGraph is a parsed modules.dep: module path (relative to the module
// tree, as written in the file) → the paths it depends on, in file order.
type depGraph struct {
	deps  map[string][]string
	order []string            // paths in file order
	names map[string][]string // canonical name → paths
}

// modName is the canonical name of a module file or module: base name
// without .ko and compression suffix, '-' spelled '_'.
func modName(p string) string {
	b := path.Base(p)
	for _, s := range []string{".xz", ".zst", ".gz"} {
		b = strings.TrimSuffix(b, s)
	}
	b = strings.TrimSuffix(b, ".ko")
	return strings.ReplaceAll(b, "-", "_")
}

// parseDeps reads modules.dep ("path: dep dep …" per line, as depmod
// writes it). Blank lines are skipped; anything else without a colon, an
// absolute or ".."-escaping path, or a path listed twice is an error.
func parseDeps(r io.Reader) (*depGraph, error) {
	g := &depGraph{deps: map[string][]string{}, names: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" {
			continue
		}
		mod, rest, ok := strings.Cut(t, ":")
		if !ok {
			return nil, fmt.Errorf("modules.dep:%d: no colon", line)
		}
		mod = strings.TrimSpace(mod)
		if err := checkModPath(mod); err != nil {
			return nil, fmt.Errorf("modules.dep:%d: %w", line, err)
		}
		if _, dup := g.deps[mod]; dup {
			return nil, fmt.Errorf("modules.dep:%d: %s listed twice", line, mod)
		}
		deps := strings.Fields(rest)
		for _, d := range deps {
			if err := checkModPath(d); err != nil {
				return nil, fmt.Errorf("modules.dep:%d: %w", line, err)
			}
		}
		g.deps[mod] = deps
		g.order = append(g.order, mod)
		n := modName(mod)
		g.names[n] = append(g.names[n], mod)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.dep: %w", err)
	}
	return g, nil
}

func checkModPath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("bad module path %q", p)
	}
	return nil
}

// parseBuiltin reads modules.builtin (one module path per line) into a set
// of canonical names.
func parseBuiltin(r io.Reader) (map[string]bool, error) {
	set := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			set[modName(t)] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.builtin: %w", err)
	}
	return set, nil
}

// closure returns the module paths needed to load names, dependencies
// first (a module comes after everything it depends on), ties in
// modules.dep file order so the result does not depend on map order.
// Names built into the kernel are skipped; a name neither in modules.dep
// nor built in is returned in missing. A dependency cycle is an error.
func (g *depGraph) closure(names []string, builtin map[string]bool) (paths, missing []string, err error) {
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
		c := modName(n)
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

// filterAliases keeps the "alias PATTERN MODULE" lines of a
// modules.alias whose module is in keep (canonical names), in file
// order. Other lines (comments, and patterns the node's matcher,
// path.Match, would reject) are dropped.
func filterAliases(r io.Reader, keep map[string]bool) ([]byte, error) {
	var b bytes.Buffer
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "alias" || !keep[modName(f[2])] {
			continue
		}
		if _, err := path.Match(f[1], ""); err != nil {
			continue
		}
		fmt.Fprintf(&b, "alias %s %s\n", f[1], modName(f[2]))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
