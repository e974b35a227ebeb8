package pid1

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beo-cluster/beo/pkg/modindex"
	"golang.org/x/sys/unix"
)

// LoadModules loads the named kernel modules and what they depend on,
// dependencies first, from the initrd's modules that stage 1 left in
// LaterModules; a module the kernel has already is skipped. bpslave calls
// it before a mount whose file system is a module (nfsv4 for an NFS
// mount, ext4 for a local disk), and init at the start of stage 2 for
// the modules the kernel command line names (beo.modules=, what the
// node's fstab needs: see preload): the node's kernel cannot load
// modules on demand, having no modprobe. A name the initrd does not
// carry is skipped (it may be built into the kernel; the mount says if
// not).
//
// Loaders take turns module by module: each holds an flock on the
// module's file while it checks and loads it, so neither loads a file
// the other has loaded. When the master asks for the mounts while
// init's preload still runs (at nice 19, on the time the boot leaves
// idle), LoadModules first raises the preloading thread to its caller's
// priority (its thread id is in PreloadTID): bpslave then waits at most
// for the module init is loading right now — no longer behind every
// nice-10 helper that is starting — and loads the rest itself. loadRest,
// which loads every other module in the background and deletes the files
// it loaded, does not take part: a module file that is gone has been
// loaded by it, and one it is loading right now (state Loading in
// /proc/modules) is waited for, so a mount never runs while its file
// system is still registering.
func LoadModules(names ...string) error {
	boost(PreloadTID)
	return loadNamed(LaterModules, "/proc/modules", names, 10*time.Second, loadFile)
}

// PreloadTID holds the thread id of init's preload while it runs.
const PreloadTID = "/run/beoclient/preload.tid"

// boost gives the thread named in file (PreloadTID) the calling
// thread's nice value, if that is higher priority. Errors are ignored:
// it only saves time.
func boost(file string) {
	b, err := os.ReadFile(file)
	if err != nil {
		return
	}
	tid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || tid <= 0 {
		return
	}
	// getpriority(2) returns 20 - nice on Linux.
	mine, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return
	}
	theirs, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil || theirs >= mine {
		return
	}
	unix.Setpriority(unix.PRIO_PROCESS, tid, 20-mine)
}

// lockFile takes an exclusive flock on file and returns its release.
// When the file cannot be opened, loading goes on without the lock:
// taking turns saves time, it is not needed for correctness.
func lockFile(file string) (unlock func()) {
	f, err := os.Open(file)
	if err != nil {
		return func() {}
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	return func() { f.Close() }
}

// preload is init's start on the modules the node's fstab needs (the
// kernel command line's beo.modules=): it loads them while the node
// gets its lease, its rootfs and starts bpslave, so that the master's
// mount request finds them loaded or partly loaded. It runs on a thread
// of its own at nice 19, like loadRest, and names it in PreloadTID for
// LoadModules to raise: under emulation every step of a boot is
// CPU-bound, so loading ahead can only win the time the boot leaves
// idle; at nice 0 it would take as much from the boot's way to bpslave
// connecting as it saves the mounts.
func preload(log *slog.Logger, names []string) {
	runtime.LockOSThread() // never unlocked: the thread ends with the goroutine, nice and all
	tid := unix.Gettid()
	if err := unix.Setpriority(unix.PRIO_PROCESS, tid, 19); err != nil {
		log.Warn("preload modules: nice", "err", err)
	}
	if err := os.WriteFile(PreloadTID, []byte(strconv.Itoa(tid)+"\n"), 0o644); err != nil {
		log.Warn("preload modules", "err", err)
	}
	start := time.Now()
	err := loadNamed(LaterModules, "/proc/modules", names, 10*time.Second, loadFile)
	os.Remove(PreloadTID)
	prio, _ := unix.Getpriority(unix.PRIO_PROCESS, 0) // 20 - nice
	log.Info("kernel modules for the fstab preloaded", "modules", strings.Join(names, ","), "took", time.Since(start).Round(time.Millisecond),
		"raised", prio > 1, "err", err)
}

// loadNamed is LoadModules with its places: dir holds modules.dep and
// the module files, procModules is /proc/modules; wait bounds the wait
// for a module another loader is loading; load loads one module file.
func loadNamed(dir, procModules string, names []string, wait time.Duration, load func(string) error) error {
	deps, err := readDeps(filepath.Join(dir, "modules.dep"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// The load order: each name's dependencies (depmod lists them so
	// that the last loads first), then the name itself.
	var order []string
	for _, n := range names {
		n = modindex.Name(n)
		d, ok := deps[n]
		if !ok {
			if deps == nil { // LaterModules is gone: loadRest loaded everything
				order = append(order, n)
			}
			continue
		}
		for i := len(d.deps) - 1; i >= 0; i-- {
			order = append(order, modindex.Name(d.deps[i]))
		}
		order = append(order, n)
	}
	var errs []error
	seen := map[string]bool{}
	for _, n := range order {
		if seen[n] {
			continue
		}
		seen[n] = true
		if moduleState(procModules, n) == "Live" {
			continue
		}
		d, ok := deps[n]
		if ok {
			file := filepath.Join(dir, d.path)
			unlock := lockFile(file)
			if moduleState(procModules, n) == "Live" { // another loader's, while we waited
				unlock()
				continue
			}
			err := load(file)
			unlock()
			if err == nil {
				continue
			}
			if !errors.Is(err, os.ErrNotExist) {
				if errors.Is(err, unix.EKEYREJECTED) || errors.Is(err, unix.EPERM) {
					// The file systems' modules come unsigned (initramfs
					// modprep.go) unless the config's kernel command line
					// asks the kernel to refuse those.
					err = fmt.Errorf("%w (the kernel refuses unsigned modules, as under Secure Boot: add module.sig_enforce=1 to the config's kernelcommandline, and the boot package carries them signed)", err)
				}
				errs = append(errs, fmt.Errorf("module %s: %w", n, err))
				continue
			}
		}
		// No file (any more): loadRest has it, or had it.
		if err := waitLive(procModules, n, wait); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// waitLive waits until /proc/modules shows module n Live.
func waitLive(procModules, n string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		st := moduleState(procModules, n)
		switch {
		case st == "Live":
			return nil
		case st == "":
			return fmt.Errorf("module %s: not loaded, and the initrd's module files are gone", n)
		case time.Now().After(deadline):
			return fmt.Errorf("module %s: still %s after %v", n, st, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// moduleState is module n's state in /proc/modules (Live, Loading,
// Unloading), "" when it is not there.
func moduleState(procModules, n string) string {
	b, err := os.ReadFile(procModules)
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		// NAME SIZE REFS DEPS STATE ADDR
		f := strings.Fields(l)
		if len(f) >= 5 && modindex.Name(f[0]) == n {
			return f[4]
		}
	}
	return ""
}

// depEntry is one modules.dep line: the module's path and its
// dependencies' paths.
type depEntry struct {
	path string
	deps []string
}

// readDeps reads a modules.dep into canonical name → entry; nil when the
// file does not exist.
func readDeps(file string) (map[string]depEntry, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]depEntry{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		mod = strings.TrimSpace(mod)
		ds := strings.Fields(rest)
		for _, p := range append([]string{mod}, ds...) {
			if err := checkRelPath(p); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
		}
		out[modindex.Name(mod)] = depEntry{path: mod, deps: slices.Clip(ds)}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return out, nil
}

// checkRelPath refuses a module path that could leave the module directory.
func checkRelPath(p string) error {
	if p == "" || filepath.IsAbs(p) || filepath.Clean(p) != p || strings.HasPrefix(p, "../") || p == ".." {
		return fmt.Errorf("bad module path %q", p)
	}
	return nil
}
