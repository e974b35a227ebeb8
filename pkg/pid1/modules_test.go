package pid1

import (
	"github.com/beo-cluster/beo/pkg/modindex"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testAliases is a modules.alias as initramfs writes it: Debian 12's
// lines for the virtio NIC chain, e1000, sd_mod and a non-device alias.
const testAliases = `# Aliases extracted from modules themselves.
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000001v* virtio_net
alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000
alias pci:v00008086d0000100Fsv*sd*bc*sc*i* e1000
alias scsi:t-0x00* sd_mod
alias block-major-8-* sd_mod
alias fs-ext4 ext4
`

func TestParseAliases(t *testing.T) {
	l, err := parseAliases(strings.NewReader(testAliases))
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 7 {
		t.Fatalf("parseAliases: %d aliases, want 7: %v", len(l), l)
	}
	for _, tc := range []struct {
		i                       int
		pattern, prefix, module string
	}{
		{0, "pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001AF4d", "virtio_pci"},
		{1, "virtio:d00000001v*", "virtio:d00000001v", "virtio_net"},
		{6, "fs-ext4", "fs-ext4", "ext4"},
	} {
		if got := l[tc.i]; got != (alias{tc.pattern, tc.prefix, tc.module}) {
			t.Errorf("alias %d = %+v, want %s %s %s", tc.i, got, tc.pattern, tc.prefix, tc.module)
		}
	}
	if _, err := parseAliases(strings.NewReader("alias pci:[v* e1000\n")); err == nil {
		t.Error("parseAliases of a pattern path.Match rejects: no error, want one")
	}
}

func TestAliasMatch(t *testing.T) {
	l, err := parseAliases(strings.NewReader(testAliases))
	if err != nil {
		t.Fatal(err)
	}
	known := []string{"virtio_ring", "virtio", "virtio_pci", "failover", "virtio_net", "e1000", "sd_mod", "ext4"}
	for _, tc := range []struct {
		name    string
		devices []string
		want    []string
	}{
		{"nothing", nil, nil},
		{"virtio NIC before its bus", []string{"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", "pci:v00008086d00007000sv00000000sd00000000bc06sc01i00"}, []string{"virtio_pci"}},
		{"virtio NIC with its bus", []string{"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", "virtio:d00000001v00001AF4"}, []string{"virtio_pci", "virtio_net"}},
		{"e1000 and a disk", []string{"pci:v00008086d0000100Esv00008086sd00000000bc02sc00i00", "scsi:t-0x00"}, []string{"e1000", "sd_mod"}},
		{"prefix matches, pattern does not", []string{"pci:v00001AF4"}, nil},
		{"module the initrd lacks", []string{"virtio:d00000001v00001AF4"}, nil},
	} {
		k := known
		if tc.name == "module the initrd lacks" {
			k = slices.DeleteFunc(slices.Clone(known), func(s string) bool { return s == "virtio_net" })
		}
		if got := l.match(tc.devices, k); !slices.Equal(got, tc.want) {
			t.Errorf("%s: match = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestDeviceAliasesAndBuses(t *testing.T) {
	root := t.TempDir()
	dev := func(bus, name, alias string) {
		t.Helper()
		d := filepath.Join(root, "sys/bus", bus, "devices", name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if alias != "-" {
			if err := os.WriteFile(filepath.Join(d, "modalias"), []byte(alias+"\n"), 0o444); err != nil {
				t.Fatal(err)
			}
		}
	}
	dev("pci", "0000:00:03.0", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00")
	dev("pci", "0000:00:00.0", "pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00")
	dev("pci", "0000:00:01.0", "-") // no modalias file
	dev("acpi", "PNP0303:00", "acpi:PNP0303:")
	dev("virtio", "virtio0", "virtio:d00000001v00001AF4")
	dev("virtio", "virtio1", "virtio:d00000001v00001AF4") // same alias twice

	l, err := parseAliases(strings.NewReader(testAliases))
	if err != nil {
		t.Fatal(err)
	}
	// scsi has no bus directory (yet), fs-ext4 and block-major are no
	// device aliases, acpi has no alias: pci and virtio are scanned.
	buses := l.buses(root)
	if want := []string{"pci", "virtio"}; !slices.Equal(buses, want) {
		t.Errorf("buses = %q, want %q", buses, want)
	}
	got := deviceAliases(root, buses)
	want := []string{"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", "pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00", "virtio:d00000001v00001AF4"}
	if !slices.Equal(got, want) {
		t.Errorf("deviceAliases = %q, want %q", got, want)
	}
	if got := deviceAliases(root, []string{"*"}); len(got) != 4 {
		t.Errorf("deviceAliases(all) = %q, want 4 aliases (acpi too)", got)
	}
	// A wildcard before the colon: any bus.
	wild, err := parseAliases(strings.NewReader("alias *:foo* m\nalias pci:v1* n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := wild.buses(root); !slices.Equal(got, []string{"*"}) {
		t.Errorf("buses with a leading wildcard = %q, want [*]", got)
	}
}

func TestLoadedModulesAndCopy(t *testing.T) {
	rel, err := release()
	if err != nil {
		t.Fatal(err)
	}
	src, dst := t.TempDir(), t.TempDir()
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mods := filepath.Join(src, "lib/modules", rel)
	write(filepath.Join(mods, "modules.dep"), "kernel/a/virtio.ko:\nkernel/b/virtio_net.ko: kernel/a/virtio.ko\nkernel/c/sd-mod.ko:\n")
	write(filepath.Join(mods, "modules.alias"), testAliases)
	for _, m := range []string{"kernel/a/virtio.ko", "kernel/b/virtio_net.ko", "kernel/c/sd-mod.ko"} {
		write(filepath.Join(mods, m), "module "+m)
	}
	write(filepath.Join(src, "proc/modules"), "virtio_net 57344 0 - Live 0x0000000000000000\nvirtio 16384 1 virtio_net, Live 0x0000000000000000\n")
	if got := loadedModules(filepath.Join(src, "proc/modules")); !got["virtio"] || !got["virtio_net"] || len(got) != 2 {
		t.Errorf("loadedModules = %v, want virtio and virtio_net", got)
	}
	if err := copyModules(src, dst); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		want bool
	}{
		{"modules.dep", true}, {"modules.alias", true}, {"kernel/c/sd-mod.ko", true},
		{"kernel/a/virtio.ko", false}, {"kernel/b/virtio_net.ko", false}, // loaded: not needed later
	} {
		_, err := os.Stat(filepath.Join(dst, tc.file))
		if got := err == nil; got != tc.want {
			t.Errorf("copied %s = %v, want %v", tc.file, got, tc.want)
		}
	}
	// No module tree: nothing to copy, no error.
	if err := copyModules(t.TempDir(), filepath.Join(t.TempDir(), "later")); err != nil {
		t.Errorf("copyModules without a tree: %v", err)
	}
}

func TestInsecureReader(t *testing.T) {
	var a, b [16]byte
	if _, err := (insecureReader{}).Read(a[:]); err != nil {
		t.Skipf("getrandom(GRND_INSECURE) unavailable here: %v", err)
	}
	if _, err := (insecureReader{}).Read(b[:]); err != nil {
		t.Fatal(err)
	}
	if a == b || a == [16]byte{} {
		t.Errorf("two reads gave %x and %x, want different random bytes", a, b)
	}
}

func FuzzParseAliases(f *testing.F) {
	f.Add(testAliases)
	f.Add("alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n")
	f.Add("alias [ x\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := parseAliases(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, a := range l {
			if !strings.HasPrefix(a.pattern, a.prefix) || strings.ContainsAny(a.prefix, "*?[\\") {
				t.Fatalf("alias %+v: prefix is not the pattern's literal start", a)
			}
		}
		// Matching any parsed list must not panic.
		l.match([]string{"pci:v00001AF4d00001000", "", s}, []string{"virtio_pci", "x"})
	})
}

func TestLoadRest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	if err := os.MkdirAll(filepath.Join(dir, "kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Not a module: the kernel refuses it (or, unprivileged, finit_module
	// does); loaded is skipped without being opened (it is not there);
	// the NFS client's chain is left for mounts, and kept.
	dep := "kernel/loaded.ko:\nkernel/junk.ko:\n" + nfsDep
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644)
	os.WriteFile(filepath.Join(dir, "kernel/junk.ko"), []byte("not an ELF file"), 0o644)
	for _, l := range strings.Split(strings.TrimSpace(nfsDep), "\n") {
		p, _, _ := strings.Cut(l, ":")
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), nil, 0o644)
	}
	proc := filepath.Join(t.TempDir(), "modules")
	// virtio_net is loaded already (coldplug): its copy goes.
	os.WriteFile(proc, []byte("loaded 16384 0 - Live 0x0\nvirtio_net 16384 0 - Live 0x0\n"), 0o644)
	var logs recorder
	loadRest(slog.New(slog.NewTextHandler(&logs, nil)), dir, proc)
	all := strings.Join(logs.recs, "")
	for _, want := range []string{`msg="module not loaded" module=junk`, `msg="remaining kernel modules loaded" count=0 "left for mounts"=8`} {
		if !strings.Contains(all, want) {
			t.Errorf("log lacks %q:\n%s", want, all)
		}
	}
	for _, tried := range []string{"module=loaded", "module=nfs", "module=sunrpc"} {
		if strings.Contains(all, tried) {
			t.Errorf("%s tried:\n%s", tried, all)
		}
	}
	for _, kept := range []string{"modules.dep", "kernel/fs/nfs/nfsv4.ko", "kernel/net/sunrpc/sunrpc.ko", "kernel/junk.ko"} {
		if _, err := os.Stat(filepath.Join(dir, kept)); err != nil {
			t.Errorf("%s: %v, want it kept", kept, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "kernel/drivers/net/virtio_net.ko")); !os.IsNotExist(err) {
		t.Errorf("a loaded module's copy is still there (%v), want it deleted", err)
	}
	// Nothing left by stage 1: nothing to do, nothing logged.
	logs = recorder{}
	loadRest(slog.New(slog.NewTextHandler(&logs, nil)), filepath.Join(t.TempDir(), "none"), proc)
	if len(logs.recs) != 0 {
		t.Errorf("loadRest without modules logged %q", logs.recs)
	}
}

func TestOnDemand(t *testing.T) {
	// ext4's chain and the NFS client's are left for mounts; a module
	// something else needs (crc16, here also wanted by a driver) is not.
	dep := nfsDep + `kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/crypto/crc32c_generic.ko:
kernel/drivers/x/needs_crc16.ko: kernel/lib/crc16.ko
`
	g, err := modindex.ParseDeps(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	got, err := onDemand(g)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for p := range got {
		names = append(names, modindex.Name(p))
	}
	slices.Sort(names)
	want := []string{"crc32c_generic", "dns_resolver", "ext4", "fscache", "grace", "jbd2", "lockd", "mbcache", "netfs", "nfs", "nfsv4", "sunrpc"}
	if !slices.Equal(names, want) {
		t.Errorf("onDemand = %v, want %v", names, want)
	}
}

// TestSoftFirst: libcrc32c's soft dependency (the crc32c algorithm) is
// loaded before it, even when it was left for a mount, so nf_tables
// loads at boot on a node whose ext4 waits for its fstab.
func TestSoftFirst(t *testing.T) {
	paths := []string{"kernel/lib/libcrc32c.ko", "kernel/net/netfilter/nf_tables.ko", "kernel/crypto/crc32c_generic.ko", "kernel/fs/ext4/ext4.ko"}
	later := map[string]bool{"kernel/crypto/crc32c_generic.ko": true, "kernel/fs/ext4/ext4.ko": true}
	got := softFirst(paths, later)
	want := []string{"kernel/crypto/crc32c_generic.ko", "kernel/lib/libcrc32c.ko", "kernel/net/netfilter/nf_tables.ko", "kernel/fs/ext4/ext4.ko"}
	if !slices.Equal(got, want) {
		t.Errorf("softFirst = %v, want %v", got, want)
	}
	if later["kernel/crypto/crc32c_generic.ko"] || !later["kernel/fs/ext4/ext4.ko"] {
		t.Errorf("later = %v: crc32c_generic is needed now, ext4 still later", later)
	}
	// libcrc32c itself left for a mount: nothing moves.
	later = map[string]bool{"kernel/lib/libcrc32c.ko": true, "kernel/crypto/crc32c_generic.ko": true}
	if got := softFirst(paths, later); !slices.Equal(got, paths) || !later["kernel/crypto/crc32c_generic.ko"] {
		t.Errorf("with libcrc32c for later: %v, later %v", got, later)
	}
}
