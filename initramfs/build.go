package initramfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/beo-cluster/beo/pkg/atomicfile"
	"github.com/beo-cluster/beo/pkg/fstab"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/modindex"
	"github.com/beo-cluster/beo/pkg/nodefs"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// Paths of the boot package. Those of the node's file system, which the
// builder and beoclient (pkg/pid1) agree on, are pkg/nodefs's.
const (
	DefaultDir = "/var/beowulf/boot"

	KernelFile   = "kernel"      // copy of the kernel image
	InitrdFile   = "initrd"      // newc cpio, compressed as Options.Compression says
	RootfsFile   = "rootfs.cpio" // newc cpio
	ManifestFile = "manifest.json"

	// KeysDir is where the rootfs carries master.pub; bpslave makes the
	// node's own key beside it.
	KeysDir = nodefs.KeysDir
)

// manifestFormat changes whenever the archives' layout changes, so a
// master upgraded to a new layout rebuilds even if no input changed.
const manifestFormat = 3 // 2: modules.alias in the initrd, compression by name; 3: file system modules prepared (modprep.go)

// Options say what goes into a boot package. Zero values mean defaults.
type Options struct {
	Dir     string // output directory; DefaultDir
	Kernel  string // kernel image; /boot/vmlinuz-$(uname -r)
	Modules string // module tree; /lib/modules/<release read from Kernel>
	Binary  string // the beo binary to boot; this executable
	Keys    string // the master's key directory (master.pub is shipped); /etc/beowulf/keys
	// Applets are the names that get a symlink to the binary beside it
	// (nodefs.Binary's directory).
	Applets []string
	// HostRoot is the master's root whose top-level layout the node root
	// mirrors (/bin → usr/bin where usrmerge made it so); "" = "/".
	HostRoot string
	// Modules to carry with their dependencies; nil = DefaultModules().
	// A name the module tree lacks is an error unless it is one of the
	// defaults (then it is logged and skipped): a node must not boot
	// without a driver the admin asked for.
	BootModules []string
	// Libraries are host files (or directories: the shared objects
	// directly in them) prestaged into the rootfs at the same paths; see
	// the package doc. Missing ones are logged and skipped.
	Libraries []string
	// Compression of the initrd: one of Compressions(), ""
	// DefaultCompression. The kernel unpacks it.
	Compression string
	// SignedModules carries the file systems' modules as shipped, signed,
	// rather than prepared for a fast load (modprep.go): for nodes whose
	// kernel refuses unsigned modules where the kernel's config does not
	// say so. ForCluster sets it when the config's kernelcommandline asks
	// for that (module.sig_enforce=1, lockdown=).
	SignedModules bool
	Log           *slog.Logger
}

// Manifest describes a built boot package; it is kept as manifest.json in
// the package directory and decides whether Ensure rebuilds.
type Manifest struct {
	Format  int               `json:"format"`
	Release string            `json:"kernel_release"`
	Inputs  string            `json:"inputs"`  // SHA-256 over the uncompressed archives and the kernel
	Files   map[string]string `json:"files"`   // file name → SHA-256 of its bytes
	Modules []string          `json:"modules"` // module files carried, load order
	// Compression of the initrd (Options.Compression).
	Compression string `json:"compression"`
}

// Ensure makes sure o.Dir holds the boot package for o: it builds the
// archives, and writes them only when their bytes, the kernel, or the
// format differ from what manifest.json records or a file on disk no
// longer matches its recorded hash. It reports whether it wrote anything.
// Each file is replaced atomically (temp file, fsync, rename), the
// manifest last; a node fetching during a rebuild gets a whole old or a
// whole new file.
func Ensure(ctx context.Context, o Options) (changed bool, err error) {
	o, err = o.withDefaults()
	if err != nil {
		return false, err
	}
	p, err := plan(ctx, o)
	if err != nil {
		return false, err
	}
	inputs, err := p.inputs()
	if err != nil {
		return false, err
	}
	old, err := ReadManifest(o.Dir)
	if err == nil && old.Format == manifestFormat && old.Inputs == inputs && old.Compression == o.Compression && filesMatch(o.Dir, old.Files) {
		return false, nil
	}
	if err := p.write(ctx, o, inputs); err != nil {
		return false, err
	}
	return true, nil
}

// Build writes the boot package for o unconditionally.
func Build(ctx context.Context, o Options) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	p, err := plan(ctx, o)
	if err != nil {
		return err
	}
	inputs, err := p.inputs()
	if err != nil {
		return err
	}
	return p.write(ctx, o, inputs)
}

// ReadManifest reads dir/manifest.json.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	return m, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	if o.Keys == "" {
		o.Keys = "/etc/beowulf/keys"
	}
	if o.HostRoot == "" {
		o.HostRoot = "/"
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return o, fmt.Errorf("find own executable: %w", err)
		}
		o.Binary = exe
	}
	if o.Kernel == "" {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return o, fmt.Errorf("uname: %w", err)
		}
		rel := unix.ByteSliceToString(u.Release[:])
		o.Kernel = "/boot/vmlinuz-" + rel
		if _, err := os.Stat(o.Kernel); err != nil {
			return o, fmt.Errorf("the running kernel %s has no image at %s; choose one with -k: %w", rel, o.Kernel, err)
		}
	}
	if o.BootModules == nil {
		o.BootModules = DefaultModules()
	}
	if o.Compression == "" {
		o.Compression = DefaultCompression
	}
	if err := checkCompression(o.Compression); err != nil {
		return o, err
	}
	return o, nil
}

// pkgPlan is a boot package before it is written.
type pkgPlan struct {
	release string
	kernel  string
	initrd  *tree
	rootfs  *tree
	modules []string
}

func plan(ctx context.Context, o Options) (*pkgPlan, error) {
	kf, err := os.Open(o.Kernel)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	rel, err := KernelRelease(kf)
	kf.Close()
	if err != nil && o.Modules == "" {
		return nil, fmt.Errorf("kernel %s: %w (name the module tree explicitly)", o.Kernel, err)
	}
	if o.Modules == "" {
		o.Modules = filepath.Join(nodefs.ModulesDir, rel)
	}
	if rel == "" {
		rel = filepath.Base(o.Modules)
	}
	p := &pkgPlan{release: rel, kernel: o.Kernel, initrd: newTree(), rootfs: newTree()}
	if err := p.planInitrd(o); err != nil {
		return nil, err
	}
	if err := p.planRootfs(ctx, o); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pkgPlan) planInitrd(o Options) error {
	t := p.initrd
	if err := checkStatic(o.Binary); err != nil {
		return err
	}
	if err := t.hostFile(nodefs.Binary, 0o755, o.Binary); err != nil {
		return fmt.Errorf("binary: %w", err)
	}
	if err := t.symlink(nodefs.Init, strings.TrimPrefix(nodefs.Binary, "/")); err != nil {
		return err
	}
	names := slices.Clone(o.Applets)
	slices.Sort(names)
	for _, n := range slices.Compact(names) {
		if n == "" || n == filepath.Base(nodefs.Binary) || strings.ContainsAny(n, "/\x00") || n == "." || n == ".." {
			continue
		}
		if err := t.symlink(filepath.Join(filepath.Dir(nodefs.Binary), n), filepath.Base(nodefs.Binary)); err != nil {
			return err
		}
	}
	for _, d := range []string{"proc", "sys", "run", strings.TrimPrefix(nodefs.NewRoot, "/"), "etc"} {
		if err := t.dir(d, 0o755); err != nil {
			return err
		}
	}
	if err := t.dir("tmp", 0o1777); err != nil {
		return err
	}
	// The kernel opens /dev/console for init's stdio before anything can
	// mount devtmpfs.
	if err := t.dir("dev", 0o755); err != nil {
		return err
	}
	if err := t.charDev("dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	if err := t.charDev("dev/null", 0o666, 1, 3); err != nil {
		return err
	}
	return p.planModules(o)
}

// planModules adds the module closure of o.BootModules and a modules.dep
// naming only them, decompressing .ko.xz/.ko.zst/.ko.gz (the kernel may
// not load compressed modules).
func (p *pkgPlan) planModules(o Options) error {
	g, err := modindex.ReadDeps(filepath.Join(o.Modules, "modules.dep"))
	if err != nil {
		return fmt.Errorf("modules: %w", err)
	}
	builtin := map[string]bool{}
	if bf, err := os.Open(filepath.Join(o.Modules, "modules.builtin")); err == nil {
		builtin, err = modindex.ParseBuiltin(bf)
		bf.Close()
		if err != nil {
			return fmt.Errorf("%s/modules.builtin: %w", o.Modules, err)
		}
	}
	paths, missing, err := g.Closure(o.BootModules, builtin)
	if err != nil {
		return fmt.Errorf("%s: %w", o.Modules, err)
	}
	defaults := DefaultModules()
	for _, m := range missing {
		if !slices.Contains(defaults, m) {
			return fmt.Errorf("bootmodule %s: not in %s/modules.dep nor built into the kernel", m, o.Modules)
		}
		o.Log.Warn("default module not in this kernel; skipped", "module", m, "modules", o.Modules)
	}
	dir := strings.TrimPrefix(filepath.Join(nodefs.ModulesDir, p.release), "/")
	rename := map[string]string{}
	for _, mp := range paths {
		rename[mp] = stripCompression(mp)
	}
	var carried modindex.Graph
	for _, mp := range paths {
		var ds []string
		for _, d := range g.Deps(mp) {
			ds = append(ds, rename[d])
		}
		if err := carried.Add(rename[mp], ds); err != nil {
			return fmt.Errorf("%s: %w", o.Modules, err)
		}
	}
	// The file systems' modules, which a node loads while it boots when
	// its fstab asks, are prepared for a fast load (modprep.go).
	prep := map[string]bool{}
	keep, why := o.SignedModules, "asked for"
	if !keep {
		keep, why = keepSignatures(o.Kernel, p.release)
	}
	if only, err := carried.Only(fstab.MountModules()); err != nil {
		return fmt.Errorf("%s: %w", o.Modules, err)
	} else if keep && len(only) > 0 {
		o.Log.Info("file system modules carried signed, as shipped (slower to load)", "why", why)
	} else {
		for _, mp := range only {
			prep[mp] = true
		}
	}
	for _, mp := range paths {
		src := filepath.Join(o.Modules, mp)
		dst := filepath.Join(dir, rename[mp])
		switch {
		case rename[mp] == mp && !prep[rename[mp]]:
			if err := p.initrd.hostFile(dst, 0o644, src); err != nil {
				return fmt.Errorf("module: %w", err)
			}
		default:
			var b []byte
			var err error
			if rename[mp] == mp {
				b, err = os.ReadFile(src)
			} else {
				b, err = decompress(src)
			}
			if err != nil {
				return fmt.Errorf("module: %w", err)
			}
			if prep[rename[mp]] {
				if b, err = prepareModule(b); err != nil {
					return fmt.Errorf("module %s: %w", src, err)
				}
			}
			if err := p.initrd.file(dst, 0o644, b); err != nil {
				return err
			}
		}
		p.modules = append(p.modules, rename[mp])
	}
	var dep bytes.Buffer
	carried.WriteTo(&dep)
	if err := p.initrd.file(filepath.Join(dir, "modules.dep"), 0o644, dep.Bytes()); err != nil {
		return err
	}
	// modules.alias for the carried modules: the node loads at boot only
	// those a present device asks for (pkg/pid1 coldplug).
	af, err := os.Open(filepath.Join(o.Modules, "modules.alias"))
	if errors.Is(err, os.ErrNotExist) {
		o.Log.Warn("no modules.alias; nodes will load every module at boot", "modules", o.Modules)
		return nil
	}
	if err != nil {
		return fmt.Errorf("modules: %w", err)
	}
	all, err := modindex.UsableAliases(af)
	af.Close()
	if err != nil {
		return fmt.Errorf("%s/modules.alias: %w", o.Modules, err)
	}
	names := map[string]bool{}
	for _, mp := range paths {
		names[modindex.Name(mp)] = true
	}
	var aliases bytes.Buffer
	modindex.WriteAliases(&aliases, slices.DeleteFunc(all, func(a modindex.Alias) bool { return !names[a.Module] }))
	return p.initrd.file(filepath.Join(dir, "modules.alias"), 0o644, aliases.Bytes())
}

// checkStatic refuses a binary the node's kernel could not start: not
// ELF, or dynamically linked (the initrd has no ld.so; build with
// CGO_ENABLED=0, as the Makefile does).
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("binary %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("binary %s is dynamically linked; the node has no ld.so (build with CGO_ENABLED=0)", path)
		}
	}
	return nil
}

func stripCompression(p string) string {
	for _, s := range []string{".xz", ".zst", ".gz"} {
		if strings.HasSuffix(p, ".ko"+s) {
			return strings.TrimSuffix(p, s)
		}
	}
	return p
}

func decompress(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("module: %w", err)
	}
	defer f.Close()
	r, err := kmodule.CompressionReader(f)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("module %s: decompress: %w", path, err)
	}
	return b, nil
}

// inputs is the SHA-256 over the format, the kernel image and both
// uncompressed archives: equal inputs ⇔ equal boot package.
func (p *pkgPlan) inputs() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "beo boot package format %d\n", manifestFormat)
	kf, err := os.Open(p.kernel)
	if err != nil {
		return "", fmt.Errorf("kernel: %w", err)
	}
	_, err = io.Copy(h, kf)
	kf.Close()
	if err != nil {
		return "", fmt.Errorf("kernel: %w", err)
	}
	for _, t := range []*tree{p.initrd, p.rootfs} {
		if err := t.write(h); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (p *pkgPlan) write(ctx context.Context, o Options, inputs string) error {
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fmt.Errorf("boot dir: %w", err)
	}
	m := Manifest{Format: manifestFormat, Release: p.release, Inputs: inputs,
		Files: map[string]string{}, Modules: p.modules, Compression: o.Compression}
	steps := []struct {
		name string
		fill func(w io.Writer) error
	}{
		{RootfsFile, p.rootfs.write},
		{InitrdFile, func(w io.Writer) error {
			zw, finish, err := compressTo(w, o.Compression)
			if err != nil {
				return err
			}
			if err := p.initrd.write(zw); err != nil {
				return err
			}
			return finish()
		}},
		{KernelFile, func(w io.Writer) error {
			f, err := os.Open(p.kernel)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(w, f)
			return err
		}},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		sum, err := writeAtomic(filepath.Join(o.Dir, s.name), 0o644, s.fill)
		if err != nil {
			return fmt.Errorf("boot package %s: %w", s.name, err)
		}
		m.Files[s.name] = sum
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if _, err := writeAtomic(filepath.Join(o.Dir, ManifestFile), 0o644, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}); err != nil {
		return fmt.Errorf("boot package manifest: %w", err)
	}
	o.Log.Info("boot package written", "dir", o.Dir, "kernel", p.release, "modules", len(p.modules))
	return nil
}

// writeAtomic replaces path with what fill writes (pkg/atomicfile) and
// returns the SHA-256 of those bytes.
func writeAtomic(path string, mode os.FileMode, fill func(io.Writer) error) (string, error) {
	h := sha256.New()
	err := atomicfile.Write(path, mode, func(w io.Writer) error { return fill(io.MultiWriter(w, h)) })
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// filesMatch reports whether every recorded file exists with its hash.
func filesMatch(dir string, files map[string]string) bool {
	for _, name := range []string{KernelFile, InitrdFile, RootfsFile} {
		want, ok := files[name]
		if !ok {
			return false
		}
		got, err := fileHash(filepath.Join(dir, name))
		if err != nil || got != want {
			return false
		}
	}
	return true
}

func fileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readMasterPub returns master.pub from dir, checked.
func readMasterPub(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, link.MasterPubFile))
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	if _, err := link.ParsePublic(b); err != nil {
		return nil, fmt.Errorf("master key in %s: %w", dir, err)
	}
	return b, nil
}

var errNotAbs = errors.New("not an absolute path")
