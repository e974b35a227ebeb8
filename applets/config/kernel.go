package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/beo-cluster/beo/pkg/modindex"
	"github.com/beo-cluster/beo/pkg/nodefs"
	"golang.org/x/sys/unix"
)

// kernel is what check knows of the nodes' kernel: the module tree the
// boot image is built from (beoboot and beo master build it from the
// running kernel's /lib/modules/RELEASE unless told otherwise, see
// initramfs), and the file systems of the master's running kernel. A
// zero kernel knows nothing and checks nothing.
type kernel struct {
	deps    *modindex.Graph
	builtin map[string]bool
	fs      map[string]bool // file system types: /proc/filesystems (built in or loaded) and the tree's kernel/fs modules
}

// loadKernel reads the module tree dir ("" = /lib/modules/RELEASE of the
// running kernel). A default tree without a modules.dep is no error: then
// bootmodule names are not checked; a tree named with -m must have one.
func loadKernel(dir string, w io.Writer) (*kernel, error) {
	k := &kernel{fs: map[string]bool{}}
	procFilesystems(k.fs)
	explicit := dir != ""
	if !explicit {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return k, nil
		}
		dir = filepath.Join(nodefs.ModulesDir, unix.ByteSliceToString(u.Release[:]))
	}
	g, err := modindex.ReadDeps(filepath.Join(dir, "modules.dep"))
	switch {
	case err == nil:
	case !explicit && errors.Is(err, iofs.ErrNotExist):
		return k, nil
	case explicit:
		return nil, fmt.Errorf("-m %s: %w", dir, err)
	default:
		fmt.Fprintf(w, "note: %v: bootmodule names not checked\n", err)
		return k, nil
	}
	k.deps, k.builtin = g, map[string]bool{}
	if f, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		b, err := modindex.ParseBuiltin(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(w, "note: %s/modules.builtin: %v: bootmodule names not checked\n", dir, err)
			k.deps = nil
			return k, nil
		}
		k.builtin = b
	}
	for _, p := range g.Paths() {
		if strings.HasPrefix(p, "kernel/fs/") {
			k.fs[modindex.Name(p)] = true
		}
	}
	return k, nil
}

// procFilesystems adds the file system types of the running kernel
// (/proc/filesystems: "nodev\tsysfs", "\text4") to set.
func procFilesystems(set map[string]bool) {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) > 0 {
			set[fs[len(fs)-1]] = true
		}
	}
}

// modules returns config.Options.Module: whether the tree has the
// module or the kernel has it built in, as the boot image build decides
// (modindex Closure); nil when there is no tree, so nothing is checked.
func (k *kernel) modules() func(string) bool {
	if k.deps == nil {
		return nil
	}
	return func(name string) bool {
		_, missing, err := k.deps.Closure([]string{name}, k.builtin)
		return err != nil || len(missing) == 0 // a broken tree is the build's to report
	}
}

// fsType reports whether the nodes' kernel is known to have the file
// system type.
func (k *kernel) fsType(typ string) bool { return k.fs[typ] }
