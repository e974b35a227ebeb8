package pid1

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/beo-cluster/beo/pkg/fstab"
	"github.com/beo-cluster/beo/pkg/modindex"
	"github.com/beo-cluster/beo/pkg/nodefs"
	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// This file loads the initrd's kernel modules in two rounds:
//
//   - coldplug (stage 1, on the boot's critical path): only the modules
//     whose modules.alias pattern matches a device present in
//     /sys/bus/*/devices/*/modalias, repeated while loading one makes new
//     devices appear (virtio_pci brings the virtio bus and its virtio_net
//     device). On a virtio machine that is the NIC's 8 modules, not the
//     initrd's 27;
//   - the rest (stage 2, once the node's services run): every module of
//     modules.dep not yet loaded, as before this split — so a driver for
//     hardware that shows up late (a SCSI disk behind ahci) or a
//     bootmodule with no device alias still gets loaded — from a thread
//     at nice 19, so it takes CPU only when bpslave and the others do not;
//     except the file systems' (onDemand), which wait for the fstab to
//     ask for them (LoadModules, modload.go).

// maxRounds bounds coldplug's repetitions (each round loads drivers for
// the devices the previous one made appear).
const maxRounds = 8

// release returns the running kernel's release (uname -r).
func release() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// coldplug loads the modules the present hardware asks for (see above)
// from root/lib/modules/RELEASE. Without a modules.alias there it loads
// every module of modules.dep. A module that fails is logged and the
// rest still load: one broken driver must not keep the node off the
// network.
func coldplug(log *slog.Logger, root string) {
	rel, err := release()
	if err != nil {
		log.Error("kernel modules", "err", err)
		return
	}
	dir := filepath.Join(root, nodefs.ModulesDir, rel)
	names, err := depNames(filepath.Join(dir, "modules.dep"))
	if err != nil {
		log.Error("kernel modules", "release", rel, "err", err)
		return
	}
	aliases, err := readAliases(filepath.Join(dir, "modules.alias"))
	if errors.Is(err, os.ErrNotExist) {
		aliases = nil // an initrd without one: load everything
	} else if err != nil {
		log.Error("kernel modules", "release", rel, "err", err)
	}
	p, err := kmodule.NewProber(kmodule.ProbeOpts{RootDir: root, KVer: rel})
	if err != nil {
		log.Error("kernel modules", "release", rel, "err", err)
		return
	}
	start := time.Now()
	tried := map[string]bool{}
	loaded := 0
	probe := func(n string) {
		tried[n] = true
		if err := p.Probe(n, ""); err != nil {
			log.Warn("module not loaded", "module", n, "err", err)
			return
		}
		loaded++
	}
	if aliases == nil {
		for _, n := range names {
			probe(n)
		}
		log.Info("kernel modules loaded", "count", loaded, "of", len(names), "took", time.Since(start).Round(time.Millisecond))
		return
	}
	for round := 0; round < maxRounds; round++ {
		want := aliases.match(deviceAliases(root, aliases.buses(root)), names)
		n := 0
		for _, m := range want {
			if !tried[m] {
				probe(m)
				n++
			}
		}
		if n == 0 {
			break
		}
	}
	log.Info("kernel modules loaded", "count", loaded, "of", len(names), "for", "present devices",
		"took", time.Since(start).Round(time.Millisecond))
}

// LaterModules is where stage 1 leaves the modules it did not load, for
// loadRest and LoadModules in stage 2: under /run, a tmpfs that
// switch_root moves into the node root, so nothing of them lands in the
// node's own tree (whose /lib the rootfs may make a link to usr/lib).
const LaterModules = "/run/beoclient/modules"

// loadRest loads every module of dir/modules.dep that is not loaded yet
// and that not only mounts need (see onDemand: those wait for a mount,
// LoadModules), in file order (dependencies first: the builder writes it
// so), from one OS thread at nice 19, then deletes the files it loaded
// to give their RAM back. It is meant to run in its own goroutine.
// procModules is /proc/modules.
func loadRest(log *slog.Logger, dir, procModules string) {
	runtime.LockOSThread() // never unlocked: the thread ends with the goroutine, nice and all
	if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 19); err != nil {
		log.Warn("background modules: nice", "err", err)
	}
	g, err := modindex.ReadDeps(filepath.Join(dir, "modules.dep"))
	if errors.Is(err, os.ErrNotExist) {
		return // stage 1 left none
	}
	if err != nil {
		log.Error("background modules", "err", err)
		return
	}
	later, err := onDemand(g)
	if err != nil {
		log.Error("background modules", "err", err)
		return
	}
	have := loadedModules(procModules)
	start := time.Now()
	loaded := 0
	for _, mp := range softFirst(g.Paths(), later) {
		if later[mp] {
			continue
		}
		if !have[modindex.Name(mp)] {
			if err := loadFile(filepath.Join(dir, mp)); err != nil {
				log.Warn("module not loaded", "module", modindex.Name(mp), "err", err)
				continue
			}
			loaded++
		}
		if err := os.Remove(filepath.Join(dir, mp)); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("background modules: free", "err", err)
		}
	}
	log.Info("remaining kernel modules loaded", "count", loaded, "left for mounts", len(later), "took", time.Since(start).Round(time.Millisecond))
}

// softPre are the soft dependencies ("pre:" in modules.softdep) the
// node must honour itself: libcrc32c asks the crypto API for "crc32c"
// when it loads, and with no modprobe on the node that request fails —
// so nf_tables (process migration's bootmodule) would not load while the
// crc32c module waits for a mount that needs ext4.
var softPre = map[string]string{"libcrc32c": "crc32c_generic"}

// softFirst orders paths so that a module's soft dependency (softPre)
// comes before it, taking the dependency out of later if a module loaded
// now needs it.
func softFirst(paths []string, later map[string]bool) []string {
	byName := make(map[string]string, len(paths))
	for _, p := range paths {
		byName[modindex.Name(p)] = p
	}
	var first []string
	for _, p := range paths {
		if later[p] {
			continue
		}
		if dep, ok := byName[softPre[modindex.Name(p)]]; ok {
			delete(later, dep)
			first = append(first, dep)
		}
	}
	if len(first) == 0 {
		return paths
	}
	out := append([]string{}, first...)
	for _, p := range paths {
		if !slices.Contains(first, p) {
			out = append(out, p)
		}
	}
	return out
}

// onDemand returns the module paths of g that only mounts need: the
// modules fstab.MountModules names (the NFS client, ext4) and their
// dependencies, less whatever another module depends on. A node loads
// them when its fstab asks (LoadModules: a mount, or init's preload of
// beo.modules=), not at boot: the NFS client alone is 8 modules, 5.3 MB,
// 2.5–6 s of loading under emulation, on every node with or without an
// NFS line.
func onDemand(g *modindex.Graph) (map[string]bool, error) {
	only, err := g.Only(fstab.MountModules())
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, p := range only {
		out[p] = true
	}
	return out, nil
}

// loadFile loads one module file (finit_module; EEXIST is success).
func loadFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := kmodule.FileInit(f, "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

// loadedModules returns the names in /proc/modules.
func loadedModules(procModules string) map[string]bool {
	have := map[string]bool{}
	b, err := os.ReadFile(procModules)
	if err != nil {
		return have
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			have[modindex.Name(f[0])] = true
		}
	}
	return have
}

// depPaths returns the module paths of a modules.dep, in file order.
func depPaths(file string) ([]string, error) {
	g, err := modindex.ReadDeps(file)
	if err != nil {
		return nil, err
	}
	return g.Paths(), nil
}

// depNames returns the module names in a modules.dep, in file order.
func depNames(file string) ([]string, error) {
	paths, err := depPaths(file)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = modindex.Name(p)
	}
	return names, nil
}

// An alias is one modules.alias line (modindex.Alias) made ready for
// matching: prefix is the pattern's literal start (up to its first
// wildcard). Most patterns name a vendor and device there, so a prefix
// test rejects nearly every device before path.Match runs — under TCG
// matching ~1000 patterns against ~60 devices with path.Match alone took
// 0.2 s.
type alias struct{ pattern, prefix, module string }

// aliasList is a parsed modules.alias.
type aliasList []alias

// readAliases reads a modules.alias file (see parseAliases).
func readAliases(file string) (aliasList, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l, err := parseAliases(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return l, nil
}

// parseAliases reads the initrd's modules.alias (modindex.ParseAliases:
// a line it cannot use is an error) and notes each pattern's prefix.
func parseAliases(r io.Reader) (aliasList, error) {
	as, err := modindex.ParseAliases(r)
	if err != nil {
		return nil, err
	}
	l := make(aliasList, len(as))
	for i, a := range as {
		pre := a.Pattern
		if i := strings.IndexAny(pre, `*?[\`); i >= 0 {
			pre = pre[:i]
		}
		l[i] = alias{a.Pattern, pre, a.Module}
	}
	return l, nil
}

// match returns the modules among known (in known's order) that some
// alias maps one of the device modaliases to.
func (l aliasList) match(devices []string, known []string) []string {
	want := map[string]bool{}
	for _, a := range l {
		if want[a.module] {
			continue
		}
		for _, d := range devices {
			if !strings.HasPrefix(d, a.prefix) {
				continue
			}
			if ok, _ := path.Match(a.pattern, d); ok {
				want[a.module] = true
				break
			}
		}
	}
	var out []string
	for _, n := range known {
		if want[n] && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// buses returns the buses under root/sys/bus whose devices the aliases
// can match. A device's modalias starts with "PREFIX:", and for nearly
// every bus the prefix is the bus's name (pci, virtio, scsi, usb…), so
// only those buses are scanned: under TCG every sysfs lookup is slow,
// and a scan of all 21 buses took 0.1–0.2 s. Aliases without a colon
// (fs-*, block-major-*) match no device; a bus that does not exist (yet:
// the question is asked each round) has no devices; a wildcard before
// the colon means every bus ("*"). A prefix that is not its bus's name
// ("of:" devices sit on the platform bus) is missed here — such a module
// is still loaded by loadRest, only later.
func (l aliasList) buses(root string) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range l {
		if !strings.Contains(a.pattern, ":") {
			continue // not a device alias
		}
		bus, _, ok := strings.Cut(a.prefix, ":")
		if !ok || bus == "" || strings.ContainsAny(bus, "/.") {
			return []string{"*"} // a wildcard before the colon: any bus
		}
		if seen[bus] {
			continue
		}
		seen[bus] = true
		if _, err := os.Stat(filepath.Join(root, "sys/bus", bus)); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // no such bus (yet: buses is asked again each round)
			}
			return []string{"*"}
		}
		out = append(out, bus)
	}
	return out
}

// deviceAliases returns the modalias of every device on the named buses
// ("*": all) under root/sys, sorted, without duplicates.
func deviceAliases(root string, buses []string) []string {
	var files []string
	for _, b := range buses {
		fs, _ := filepath.Glob(filepath.Join(root, "sys/bus", b, "devices/*/modalias"))
		files = append(files, fs...)
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// copyModules copies from root/lib/modules/RELEASE into dst what
// loadRest needs: modules.dep and the files of the modules not loaded
// yet. No module tree, nothing to copy.
func copyModules(root, dst string) error {
	rel, err := release()
	if err != nil {
		return err
	}
	from := filepath.Join(root, nodefs.ModulesDir, rel)
	paths, err := depPaths(filepath.Join(from, "modules.dep"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	have := loadedModules(filepath.Join(root, "proc/modules"))
	files := []string{"modules.dep"}
	if _, err := os.Stat(filepath.Join(from, "modules.alias")); err == nil {
		files = append(files, "modules.alias") // for the kernel's own requests (modprobe.go)
	}
	for _, p := range paths {
		if !have[modindex.Name(p)] {
			files = append(files, p)
		}
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, f)), 0o755); err != nil {
			return err
		}
		if err := copyFile(filepath.Join(from, f), filepath.Join(dst, f)); err != nil {
			return fmt.Errorf("module %s: %w", f, err)
		}
	}
	return nil
}
