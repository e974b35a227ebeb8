package pid1

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/beo-cluster/beo/pkg/nodefs"
	"golang.org/x/sys/unix"
)

// The kernel's own requests for modules (request_module: a mount of a
// file system type not registered yet, `fs-nfs4`; a socket family,
// `net-pf-…`; a crypto algorithm, `crypto-…`) run the program named in
// /proc/sys/kernel/modprobe, `/sbin/modprobe -q -- NAME` by default. A
// node has no kmod (and a /sbin/modprobe mounted from the master's /usr
// would look for the master's kernel's modules), so stage 2 points the
// kernel at ModprobeHelper, a link to beo whose name main.go dispatches to
// Modprobe: it resolves NAME by the initrd's modules.alias and loads it
// from LaterModules as LoadModules does. That is what lets a root user
// `mount -t nfs4 …` or `mount -t ext4 …` by hand on a node whose fstab
// never asked for those modules.

// ModprobeArg0 is the helper's name: main.go runs Modprobe for it.
const ModprobeArg0 = "beo-modprobe"

// ModprobeHelper is the path stage 2 writes to /proc/sys/kernel/modprobe:
// a link to the beo binary, under /run with the modules it loads.
const ModprobeHelper = "/run/beoclient/" + ModprobeArg0

// kernelModprobe is the kernel's setting of its helper.
const kernelModprobe = "/proc/sys/kernel/modprobe"

// installModprobe makes ModprobeHelper a link to binary and names it in
// the kernel's setting.
func installModprobe(binary string) error {
	os.Remove(ModprobeHelper)
	if err := os.MkdirAll(filepath.Dir(ModprobeHelper), 0o755); err != nil {
		return err
	}
	if err := os.Symlink(binary, ModprobeHelper); err != nil {
		return err
	}
	return os.WriteFile(kernelModprobe, []byte(ModprobeHelper+"\n"), 0o644)
}

// Modprobe is the kernel's module helper (see above): args are what
// follows argv[0], `-q -- NAME` as the kernel passes them (other
// modprobe options are accepted and ignored). It returns the exit
// status: 0 when the modules NAME resolves to are loaded (or built in),
// 1 otherwise, the reason written to kmsg (the kernel gives its helper
// no output; beoklogd sends kmsg to the master's messages.N) and,
// without -q, to errOut. As with kmod, any user can make the kernel ask
// (a mount, a socket family); only modules the initrd carries load, or
// what the distribution's modprobe finds (kmod).
func Modprobe(args []string, errOut io.Writer) int {
	var kmsg io.Writer = io.Discard
	if f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		defer f.Close()
		kmsg = f
	}
	return modprobe(args, errOut, kmsg, func(name string) ([]string, error) {
		mods, err := resolve(LaterModules, name)
		if errors.Is(err, errNoModule) {
			kmod(args) // returns only if there is none
		}
		if err != nil {
			return nil, err
		}
		return mods, LoadModules(mods...)
	})
}

// kmod hands a request the initrd cannot answer to the distribution's
// modprobe, when the node has one with modules for its kernel: a node
// whose fstab mounts the master's /usr, and whose master runs the
// nodes' kernel, has every module the master has (/lib/modules is
// /usr/lib/modules). It returns only when there is none.
func kmod(args []string) {
	rel, err := release()
	if err != nil {
		return
	}
	if _, err := os.Stat(filepath.Join("/lib/modules", rel, "modules.dep")); err != nil {
		return
	}
	for _, p := range []string{"/usr/sbin/modprobe", "/sbin/modprobe"} {
		if t, err := filepath.EvalSymlinks(p); err == nil && filepath.Base(t) != filepath.Base(nodefs.Binary) {
			unix.Exec(p, append([]string{p}, args...), os.Environ())
		}
	}
}

// modprobe is Modprobe with its effects: kmsg gets one record per call,
// load resolves and loads a name.
func modprobe(args []string, errOut, kmsg io.Writer, load func(string) ([]string, error)) int {
	quiet := false
	var names []string
	for i, a := range args {
		if a == "--" {
			names = append(names, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") {
			quiet = quiet || a == "-q" || a == "--quiet"
			continue
		}
		names = append(names, a)
	}
	if len(names) == 0 {
		fmt.Fprintln(errOut, "usage: "+ModprobeArg0+" [-q] [--] NAME")
		return 1
	}
	// Only the first word is a module: modprobe takes the rest as its
	// parameters, which the node's loader does not pass on.
	mods, err := load(names[0])
	if err != nil {
		fmt.Fprintf(kmsg, "%s: %s: %v\n", ModprobeArg0, names[0], err)
		if !quiet {
			fmt.Fprintf(errOut, "%s: %s: %v\n", ModprobeArg0, names[0], err)
		}
		return 1
	}
	fmt.Fprintf(kmsg, "%s: %s: loaded %s\n", ModprobeArg0, names[0], strings.Join(mods, ","))
	return 0
}

// errNoModule is resolve's answer for a name nothing on the node provides.
var errNoModule = errors.New("no such module on this node")

// resolve returns the modules that provide name: name itself when dir's
// modules.dep has it or the kernel has it (loaded or built in), else every
// module a modules.alias pattern in dir maps it to, as modprobe does.
func resolve(dir, name string) ([]string, error) {
	mod := strings.ReplaceAll(name, "-", "_")
	deps, err := readDeps(filepath.Join(dir, "modules.dep"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if _, ok := deps[mod]; ok || builtin(mod) {
		return []string{mod}, nil
	}
	as, err := readAliases(filepath.Join(dir, "modules.alias"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var out []string
	for _, a := range as {
		if ok, _ := path.Match(a.pattern, name); ok && !slices.Contains(out, a.module) {
			out = append(out, a.module)
		}
	}
	if len(out) == 0 {
		return nil, errNoModule
	}
	return out, nil
}

// builtin reports whether the running kernel has mod, loaded or built
// in (/sys/module lists both).
func builtin(mod string) bool {
	var st unix.Stat_t
	return unix.Stat("/sys/module/"+mod, &st) == nil
}
