package elfdeps

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// dso is one loaded object, ld.so's struct link_map.
type dso struct {
	path   string   // the name it was opened by
	names  []string // the names it answers to (l_name, l_libname)
	obj    *object
	origin string // $ORIGIN
	loader *dso   // the object whose NEEDED loaded it (l_loader)
	id     fileID
	hasID  bool
}

func (d *dso) answers(name string) bool {
	return slices.Contains(d.names, name) || (d.obj.soname != "" && d.obj.soname == name)
}

// loader replays ld.so's startup for one program.
type loader struct {
	*closure
	arch     arch
	cache    *Cache
	platform string
	lib      string
	defaults []string
	main     *dso
	llp      []string // LD_LIBRARY_PATH, decomposed
	dsos     []*dso   // in load order
}

// run loads the program's interpreter, then its libraries breadth first,
// as _dl_map_object_deps does.
func (l *loader) run(name string, r resolved, o *object) error {
	l.platform = cmp.Or(l.opts.Platform, l.arch.platform())
	l.lib = cmp.Or(l.opts.Lib, l.arch.libDir(l.root))
	l.defaults = l.opts.DefaultDirs
	if l.defaults == nil {
		l.defaults = l.arch.defaultDirs()
	}
	l.cache = l.opts.Cache
	if l.cache == nil {
		c, err := ReadCache(l.root)
		if err != nil {
			return err
		}
		l.cache = c
	}

	// The program's $ORIGIN comes from /proc/self/exe: its resolved path.
	l.main = &dso{path: name, obj: o, origin: dirOf(r.real)}
	l.main.id, l.main.hasID = idOf(r.info)
	l.dsos = []*dso{l.main}
	if err := l.interpreter(); err != nil {
		return err
	}
	l.llp = l.searchPath(l.opts.LibraryPath, ":;", l.main)

	var missing []error
	queue := []*dso{l.main}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		for _, need := range d.obj.needed {
			dep, isNew, err := l.mapObject(d, need)
			var nf *NotFoundError
			if errors.As(err, &nf) {
				missing = append(missing, err)
				continue
			}
			if err != nil {
				return err
			}
			if isNew {
				queue = append(queue, dep)
			}
		}
	}
	return errors.Join(missing...)
}

// interpreter loads PT_INTERP, which the kernel opens by its path: no
// search, no class check (the kernel refuses a wrong one).
func (l *loader) interpreter() error {
	name := l.absName(l.main.obj.interp)
	r, err := l.open(name)
	if err != nil {
		return fmt.Errorf("interpreter: %w", err)
	}
	f, err := openFile(l.root, r.real)
	if err != nil {
		return fmt.Errorf("interpreter: %w", err)
	}
	defer f.Close()
	o, err := readObject(f)
	if err != nil {
		return fmt.Errorf("interpreter %s: %w", name, err)
	}
	d := &dso{path: name, names: []string{name}, obj: o, origin: dirOf(name)}
	d.id, d.hasID = idOf(r.info)
	l.dsos = append(l.dsos, d)
	l.add(name, r)
	return nil
}

// found is a candidate that passed the checks.
type found struct {
	path string
	r    resolved
	obj  *object
}

// mapObject is _dl_map_object: the object that NEEDED name from by gets.
// isNew reports whether it was loaded now (and its own NEEDED are due).
func (l *loader) mapObject(by *dso, name string) (d *dso, isNew bool, err error) {
	if strings.Contains(name, "$") {
		exp, ok := l.expand(by, name)
		if !ok || exp == "" {
			return nil, false, fmt.Errorf("%s (needed by %s): empty dynamic string token substitution", name, by.path)
		}
		name = exp
	}
	for _, d := range l.dsos {
		if d.answers(name) {
			return d, false, nil
		}
	}
	var s search
	if strings.Contains(name, "/") {
		err = s.try(l, l.absName(name))
	} else {
		err = l.search(&s, by, name)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s (needed by %s): %w", name, by.path, err)
	}
	if s.found == nil {
		return nil, false, &NotFoundError{Name: name, NeededBy: by.path, OtherClass: s.otherClass}
	}
	f := s.found
	id, hasID := idOf(f.r.info)
	l.add(f.path, f.r) // even for a file already loaded: ld.so opens this name
	for _, d := range l.dsos {
		if hasID && d.hasID && d.id == id {
			d.names = append(d.names, name)
			return d, false, nil
		}
	}
	d = &dso{path: f.path, names: []string{f.path, name}, obj: f.obj, origin: dirOf(f.path), loader: by, id: id, hasID: hasID}
	l.dsos = append(l.dsos, d)
	return d, true, nil
}

// search looks for a NEEDED name without a slash in ld.so's order.
func (l *loader) search(s *search, by *dso, name string) error {
	if !by.obj.hasRun {
		didMain := false
		for d := by; d != nil; d = d.loader {
			if d.obj.rpath == "" {
				continue
			}
			if err := s.dirs(l, l.searchPath(d.obj.rpath, ":", d), name); err != nil || s.found != nil {
				return err
			}
			didMain = didMain || d == l.main
		}
		if !didMain && l.main.obj.rpath != "" {
			if err := s.dirs(l, l.searchPath(l.main.obj.rpath, ":", l.main), name); err != nil || s.found != nil {
				return err
			}
		}
	}
	if err := s.dirs(l, l.llp, name); err != nil || s.found != nil {
		return err
	}
	if by.obj.runpath != "" {
		if err := s.dirs(l, l.searchPath(by.obj.runpath, ":", by), name); err != nil || s.found != nil {
			return err
		}
	}
	noDefLib := by.obj.flags1&df1NoDefLib != 0
	if p := l.cache.lookup(name, l.arch.cacheID()); p != "" && !(noDefLib && l.inDefaults(p)) {
		// A cache entry whose file is gone falls through to the defaults.
		if err := s.try(l, p); err != nil || s.found != nil {
			return err
		}
	}
	if noDefLib {
		return nil
	}
	return s.dirs(l, l.defaults, name)
}

// inDefaults reports whether p is in a default directory.
func (l *loader) inDefaults(p string) bool {
	for _, d := range l.defaults {
		if strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// search is the state of one library search.
type search struct {
	found      *found
	otherClass bool
}

// dirs tries name in each directory ("" is the working directory).
func (s *search) dirs(l *loader, dirs []string, name string) error {
	for _, d := range dirs {
		p := name
		if d != "" {
			p = strings.TrimSuffix(d, "/") + "/" + name
		}
		if err := s.try(l, l.absName(p)); err != nil || s.found != nil {
			return err
		}
	}
	return nil
}

// try opens one candidate as open_verify does: a missing file or one of
// another class or machine is passed over; a file ld.so would choke on is
// an error.
func (s *search) try(l *loader, p string) error {
	r, err := resolve(l.root, p)
	if err != nil {
		if notFound(err) {
			return nil
		}
		return err
	}
	if !r.info.Mode().IsRegular() {
		return fmt.Errorf("%s: cannot read file data: not a regular file (%v)", p, r.info.Mode().Type())
	}
	f, err := openFile(l.root, r.real)
	if err != nil {
		if notFound(err) {
			return nil
		}
		return err
	}
	defer f.Close()
	switch err := checkIdent(f, l.arch); {
	case errors.Is(err, errSkip):
		s.otherClass = true
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", p, err)
	}
	o, err := readObject(f)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	s.found = &found{path: p, r: r, obj: o}
	return nil
}

// searchPath decomposes an RPATH, RUNPATH or LD_LIBRARY_PATH value as
// fillin_rpath does: split at any of seps, expand DSTs with d's values,
// drop entries whose DST cannot be replaced, strip trailing slashes, keep
// each directory once. An empty entry is "", the working directory.
func (l *loader) searchPath(s, seps string, d *dso) []string {
	if s == "" {
		return nil
	}
	var dirs []string
	for _, e := range splitAny(s, seps) {
		if e != "" {
			var ok bool
			if e, ok = l.expand(d, e); !ok || e == "" {
				continue
			}
			for len(e) > 1 && strings.HasSuffix(e, "/") {
				e = e[:len(e)-1]
			}
		}
		if !slices.Contains(dirs, e) {
			dirs = append(dirs, e)
		}
	}
	return dirs
}

// expand replaces $ORIGIN, $PLATFORM and $LIB (or ${…}) in s with d's
// values (_dl_dst_substitute). ok is false if a DST has no value here,
// in which case ld.so drops the path. Any other $ is kept.
func (l *loader) expand(d *dso, s string) (out string, ok bool) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		matched := false
		for _, dst := range [...]struct{ name, value string }{
			{"ORIGIN", d.origin}, {"PLATFORM", l.platform}, {"LIB", l.lib},
		} {
			n := dstLen(s, dst.name)
			if n == 0 {
				continue
			}
			if dst.value == "" {
				return "", false
			}
			b.WriteString(dst.value)
			s = s[n:]
			matched = true
			break
		}
		if !matched {
			b.WriteByte('$')
		}
	}
}

// dstLen is is_dst: the length of the DST ref at the start of s (after the
// '$'), braces included, or 0 if s does not start with it.
func dstLen(s, ref string) int {
	curly := strings.HasPrefix(s, "{")
	if curly {
		s = s[1:]
	}
	if !strings.HasPrefix(s, ref) {
		return 0
	}
	rest := s[len(ref):]
	if curly {
		if !strings.HasPrefix(rest, "}") {
			return 0
		}
		return len(ref) + 2
	}
	if rest != "" && isIdent(rest[0]) {
		return 0
	}
	return len(ref)
}

func isIdent(c byte) bool {
	return c == '_' || isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// absName makes a name the loader opens absolute: relative names are
// relative to the working directory. It does not clean the name, which
// stays as the loader forms it.
func (l *loader) absName(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return strings.TrimSuffix(l.opts.Dir, "/") + "/" + p
}

// dirOf is the directory part of p without cleaning, as ld.so computes
// l_origin: everything before the last slash ("/" for "/x").
func dirOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// splitAny splits s at every byte in seps, keeping empty fields.
func splitAny(s, seps string) []string {
	var out []string
	for {
		i := strings.IndexAny(s, seps)
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
}
