package initramfs

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/modindex"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/u-root/u-root/pkg/cpio"
	"github.com/ulikunitz/xz"
)

// fixture makes a kernel, a module tree (one module xz-compressed), keys,
// a binary and a library with links, and returns Options using them.
func fixture(t *testing.T) Options {
	t.Helper()
	dir := t.TempDir()
	write := func(p string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kernel := filepath.Join(dir, "vmlinuz")
	write(kernel, fakeBzImage("9.9.9-test (builder) #1 SMP", 0x20f))
	mods := filepath.Join(dir, "modules")
	write(filepath.Join(mods, "modules.dep"), []byte(fakeDep))
	write(filepath.Join(mods, "modules.builtin"), []byte("kernel/fs/ext4/ext4.ko\n"))
	write(filepath.Join(mods, "modules.alias"), []byte(fakeAlias))
	g, err := modindex.ParseDeps(strings.NewReader(fakeDep))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range g.Paths() {
		content := []byte("module " + modindex.Name(p))
		if strings.HasSuffix(p, ".xz") {
			var buf bytes.Buffer
			zw, err := xz.NewWriter(&buf)
			if err != nil {
				t.Fatal(err)
			}
			zw.Write(content)
			zw.Close()
			content = buf.Bytes()
		}
		write(filepath.Join(mods, p), content)
	}
	keys := filepath.Join(dir, "keys")
	if _, err := link.EnsureMasterKeys(keys); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "beo")
	write(bin, tinyELF(elf.PT_LOAD))
	// /usrlib/libfoo.so.1 → libfoo.so.1.2, reached through the directory
	// link lib → usrlib.
	write(filepath.Join(dir, "usrlib", "libfoo.so.1.2"), []byte("foo"))
	if err := os.Symlink("libfoo.so.1.2", filepath.Join(dir, "usrlib", "libfoo.so.1")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usrlib", filepath.Join(dir, "lib")); err != nil {
		t.Fatal(err)
	}
	return Options{
		Dir: filepath.Join(dir, "boot"), Kernel: kernel, Modules: mods, Binary: bin, Keys: keys,
		Applets:     []string{"bpsh", "bpslave", "beoclient", "beo", "../evil"},
		BootModules: []string{"virtio_pci", "virtio_net", "e1000", "acpi_cpufreq", "ext4", "igb"},
		Libraries:   []string{filepath.Join(dir, "lib", "libfoo.so.1"), filepath.Join(dir, "missing.so")},
	}
}

// tinyELF is an ELF header with one program header of type pt: enough
// for debug/elf to tell a static binary (PT_LOAD) from a dynamic one
// (PT_INTERP).
func tinyELF(pt elf.ProgType) []byte {
	var b bytes.Buffer
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: 1,
		Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: 1}
	copy(h.Ident[:], "\x7fELF\x02\x01\x01")
	binary.Write(&b, binary.LittleEndian, h)
	binary.Write(&b, binary.LittleEndian, elf.Prog64{Type: uint32(pt), Off: 0, Filesz: 120, Memsz: 120})
	return b.Bytes()
}

func readArchive(t *testing.T, path string) []cpio.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(decompressed(t, b))))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return recs
}

// decompressed undoes any of the initrd compressions, by magic number.
func decompressed(t *testing.T, b []byte) []byte {
	t.Helper()
	var r io.Reader
	var err error
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		r, err = gzip.NewReader(bytes.NewReader(b))
	case bytes.HasPrefix(b, []byte{0x02, 0x21, 0x4c, 0x18}):
		r = lz4.NewReader(bytes.NewReader(b))
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(b))
		if err == nil {
			defer d.Close()
			r = d
		}
	default:
		return b
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func content(t *testing.T, r cpio.Record) string {
	t.Helper()
	if r.ReaderAt == nil {
		return ""
	}
	b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func byName(recs []cpio.Record) map[string]cpio.Record {
	m := map[string]cpio.Record{}
	for _, r := range recs {
		m[r.Name] = r
	}
	return m
}

func TestInitrdContents(t *testing.T) {
	o := fixture(t)
	if _, err := Ensure(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	recs := readArchive(t, filepath.Join(o.Dir, InitrdFile))
	if recs[0].Name != "." || recs[0].Mode != cpio.S_IFDIR|0o755 {
		t.Errorf("first record %v, want . 0755", recs[0].Info)
	}
	seen := map[string]bool{".": true}
	for _, r := range recs {
		if d := filepathDir(r.Name); !seen[d] {
			t.Errorf("%s comes before its directory %s", r.Name, d)
		}
		seen[r.Name] = true
		if isDir(r.Mode) && r.Mode&0o7777 != 0o755 && r.Name != "tmp" {
			t.Errorf("directory %s has mode %o, want 755", r.Name, r.Mode&0o7777)
		}
		if r.UID != 0 || r.GID != 0 || r.MTime != 0 {
			t.Errorf("%s: uid %d gid %d mtime %d, want 0 0 0", r.Name, r.UID, r.GID, r.MTime)
		}
	}
	m := byName(recs)
	rel := "lib/modules/9.9.9-test/"
	for _, tc := range []struct {
		name    string
		mode    uint64
		content string
	}{
		{"init", cpio.S_IFLNK | 0o777, "beo/bin/beo"},
		{"beo/bin/beo", cpio.S_IFREG | 0o755, string(tinyELF(elf.PT_LOAD))},
		{"beo/bin/bpsh", cpio.S_IFLNK | 0o777, "beo"},
		{"beo/bin/beoclient", cpio.S_IFLNK | 0o777, "beo"},
		{"tmp", cpio.S_IFDIR | 0o1777, ""},
		{rel + "kernel/drivers/cpufreq/acpi-cpufreq.ko", cpio.S_IFREG | 0o644, "module acpi_cpufreq"},
		{rel + "kernel/drivers/net/virtio_net.ko", cpio.S_IFREG | 0o644, "module virtio_net"},
		{rel + "modules.dep", cpio.S_IFREG | 0o644, `kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/ethernet/intel/e1000/e1000.ko:
kernel/drivers/cpufreq/acpi-cpufreq.ko:
`},
		{rel + "modules.alias", cpio.S_IFREG | 0o644, `alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000001v* virtio_net
alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000
alias cpu:type:x86,ven*fam*mod*:feature:*0016* acpi_cpufreq
`},
	} {
		r, ok := m[tc.name]
		if !ok {
			t.Errorf("%s missing from the initrd", tc.name)
			continue
		}
		if got := content(t, r); r.Mode != tc.mode || got != tc.content {
			t.Errorf("%s: mode %o content %q, want %o %q", tc.name, r.Mode, got, tc.mode, tc.content)
		}
	}
	if c := m["dev/console"]; c.Mode != cpio.S_IFCHR|0o600 || c.Rmajor != 5 || c.Rminor != 1 {
		t.Errorf("dev/console: %v, want char 5,1 0600", c.Info)
	}
	for _, bad := range []string{"bin/../evil", "evil", rel + "kernel/drivers/cpufreq/acpi-cpufreq.ko.xz"} {
		if _, ok := m[bad]; ok {
			t.Errorf("%s should not be in the initrd", bad)
		}
	}
}

func filepathDir(n string) string {
	if i := strings.LastIndex(n, "/"); i >= 0 {
		return n[:i]
	}
	return "."
}

func TestRootfsContents(t *testing.T) {
	o := fixture(t)
	if err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	m := byName(readArchive(t, filepath.Join(o.Dir, RootfsFile)))
	lib := strings.TrimPrefix(filepath.Dir(o.Libraries[0]), "/") // …/lib
	usr := filepath.Join(filepath.Dir(lib), "usrlib")
	masterPub, _ := os.ReadFile(filepath.Join(o.Keys, link.MasterPubFile))
	for _, tc := range []struct {
		name    string
		mode    uint64
		content string
	}{
		{"etc/beowulf/keys", cpio.S_IFDIR | 0o700, ""},
		{"etc/beowulf/keys/master.pub", cpio.S_IFREG | 0o644, string(masterPub)},
		{"tmp", cpio.S_IFDIR | 0o1777, ""},
		{lib, cpio.S_IFLNK | 0o777, "usrlib"},
		{usr + "/libfoo.so.1", cpio.S_IFLNK | 0o777, "libfoo.so.1.2"},
		{usr + "/libfoo.so.1.2", cpio.S_IFREG | 0o644, "foo"},
	} {
		r, ok := m[tc.name]
		if !ok {
			t.Errorf("%s missing from the rootfs", tc.name)
			continue
		}
		if got := content(t, r); r.Mode != tc.mode || got != tc.content {
			t.Errorf("%s: mode %o content %q, want %o %q", tc.name, r.Mode, got, tc.mode, tc.content)
		}
	}
	for name, r := range m {
		if r.Mode&cpio.S_IFREG != 0 && strings.Contains(content(t, r), "PRIVATE KEY") {
			t.Errorf("%s: a private key in the rootfs", name)
		}
	}
	// The node can make its keys from what the rootfs carries.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, link.MasterPubFile), []byte(content(t, m["etc/beowulf/keys/master.pub"])), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := link.NodeKeys(dir); err != nil {
		t.Errorf("node keys from the rootfs: %v", err)
	}
}

func readAll(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, n := range []string{KernelFile, InitrdFile, RootfsFile} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		out[n] = b
	}
	return out
}

func TestReproducibleAndEnsure(t *testing.T) {
	ctx := context.Background()
	o := fixture(t)
	for i, want := range []bool{true, false} {
		got, err := Ensure(ctx, o)
		if err != nil || got != want {
			t.Fatalf("Ensure #%d = %v, %v; want %v", i+1, got, err, want)
		}
	}
	first := readAll(t, o.Dir)
	// Build elsewhere, later, with the inputs' mtimes changed: same bytes.
	o2 := o
	o2.Dir = t.TempDir()
	os.Chtimes(o.Binary, timeZero, timeZero)
	if err := Build(ctx, o2); err != nil {
		t.Fatal(err)
	}
	for n, b := range readAll(t, o2.Dir) {
		if !bytes.Equal(b, first[n]) {
			t.Errorf("%s differs between two builds of the same inputs", n)
		}
	}
	m, err := ReadManifest(o.Dir)
	if err != nil || m.Release != "9.9.9-test" || len(m.Modules) != 10 {
		t.Errorf("manifest %+v, %v; want release 9.9.9-test and 10 modules", m, err)
	}
	// Every change of an input or a damaged output rebuilds.
	for _, tc := range []struct {
		name   string
		change func()
	}{
		{"binary", func() { os.WriteFile(o.Binary, append(tinyELF(elf.PT_LOAD), "v2"...), 0o755) }},
		{"damaged initrd", func() { os.WriteFile(filepath.Join(o.Dir, InitrdFile), []byte("x"), 0o644) }},
		{"deleted rootfs", func() { os.Remove(filepath.Join(o.Dir, RootfsFile)) }},
		{"module", func() { os.WriteFile(filepath.Join(o.Modules, "kernel/net/core/failover.ko"), []byte("v2"), 0o644) }},
		{"keys", func() {
			os.Remove(filepath.Join(o.Keys, link.MasterKeyFile))
			os.Remove(filepath.Join(o.Keys, link.MasterPubFile))
			link.EnsureMasterKeys(o.Keys)
		}},
	} {
		tc.change()
		if got, err := Ensure(ctx, o); err != nil || !got {
			t.Errorf("after %s: Ensure = %v, %v; want a rebuild", tc.name, got, err)
		}
		if got, err := Ensure(ctx, o); err != nil || got {
			t.Errorf("after %s, again: Ensure = %v, %v; want no rebuild", tc.name, got, err)
		}
	}
	// Every compression: a rebuild, the kernel's magic, the same archive.
	plain := o
	plain.Dir = t.TempDir()
	plain.Compression = CompressNone
	if err := Build(ctx, plain); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(plain.Dir, InitrdFile))
	magic := map[string][]byte{CompressNone: []byte("070701"), CompressGzip: {0x1f, 0x8b},
		CompressLZ4: {0x02, 0x21, 0x4c, 0x18}, CompressZstd: {0x28, 0xb5, 0x2f, 0xfd}}
	for _, c := range []string{CompressGzip, CompressNone, CompressZstd, CompressLZ4} {
		o.Compression = c
		if got, err := Ensure(ctx, o); err != nil || !got {
			t.Errorf("compression %s: Ensure = %v, %v; want a rebuild", c, got, err)
		}
		b, err := os.ReadFile(filepath.Join(o.Dir, InitrdFile))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, magic[c]) {
			t.Errorf("compression %s: initrd starts % x, want % x", c, b[:min(8, len(b))], magic[c])
		}
		if got := decompressed(t, b); !bytes.Equal(got, want) {
			t.Errorf("compression %s: initrd unpacks to %d bytes, want the %d of the plain archive", c, len(got), len(want))
		}
		if m, err := ReadManifest(o.Dir); err != nil || m.Compression != c {
			t.Errorf("compression %s: manifest says %q, %v", c, m.Compression, err)
		}
	}
	o.Compression = "bzip2"
	if _, err := Ensure(ctx, o); err == nil || !strings.Contains(err.Error(), `"bzip2"`) {
		t.Errorf("compression bzip2: Ensure error %v, want one naming it", err)
	}
	left, _ := filepath.Glob(filepath.Join(o.Dir, ".*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %q", left)
	}
}

func TestBuildErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(o *Options)
		want   string
	}{
		{"missing bootmodule", func(o *Options) { o.BootModules = append(o.BootModules, "myraid") }, "bootmodule myraid"},
		{"no keys", func(o *Options) { o.Keys = t.TempDir() }, "master key"},
		{"no binary", func(o *Options) { o.Binary = "/nonexistent/beo" }, "binary"},
		{"dynamic binary", func(o *Options) {
			os.WriteFile(o.Binary, tinyELF(elf.PT_INTERP), 0o755)
		}, "dynamically linked"},
		{"not a kernel", func(o *Options) { o.Kernel = o.Binary; o.Modules = "" }, "bzImage"},
	} {
		o := fixture(t)
		tc.change(&o)
		if err := Build(ctx, o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Build = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

var timeZero = time.Unix(0, 0)

// TestRootfsMirrorsLayout: where the master's /bin is usrmerge's link,
// the node's is the same link; a real directory stays a directory; a
// directory the master lacks is not made.
func TestRootfsMirrorsLayout(t *testing.T) {
	o := fixture(t)
	host := t.TempDir()
	os.MkdirAll(filepath.Join(host, "usr/bin"), 0o755)
	os.Symlink("usr/bin", filepath.Join(host, "bin"))
	os.Symlink("usr/lib", filepath.Join(host, "lib"))
	os.MkdirAll(filepath.Join(host, "sbin"), 0o755)
	o.HostRoot = host
	if err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	m := byName(readArchive(t, filepath.Join(o.Dir, RootfsFile)))
	for _, tc := range []struct {
		name, content string
		mode          uint64
	}{
		{"bin", "usr/bin", cpio.S_IFLNK | 0o777},
		{"lib", "usr/lib", cpio.S_IFLNK | 0o777},
		{"sbin", "", cpio.S_IFDIR | 0o755},
		{"usr/bin", "", cpio.S_IFDIR | 0o755},
	} {
		r, ok := m[tc.name]
		if !ok {
			t.Errorf("%s missing from the rootfs", tc.name)
			continue
		}
		if got := content(t, r); r.Mode != tc.mode || got != tc.content {
			t.Errorf("%s: mode %o content %q, want %o %q", tc.name, r.Mode, got, tc.mode, tc.content)
		}
	}
	if _, ok := m["lib64"]; ok {
		t.Errorf("lib64 in the rootfs, but the master has none")
	}
}
