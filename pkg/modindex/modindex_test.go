package modindex

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeDep is the virtio_net part of Debian 12's modules.dep, plus e1000,
// a module using '-' in its file name, and a built-in.
const fakeDep = `kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/ethernet/intel/e1000/e1000.ko:
kernel/drivers/cpufreq/acpi-cpufreq.ko.xz:
`

func TestName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"kernel/drivers/net/virtio_net.ko", "virtio_net"},
		{"kernel/drivers/cpufreq/acpi-cpufreq.ko.xz", "acpi_cpufreq"},
		{"a/b-c.ko.zst", "b_c"},
		{"x.ko.gz", "x"},
		{"sd-mod", "sd_mod"}, // a name, as /proc/modules or a config line spells it
		{"e1000", "e1000"},
	} {
		if got := Name(tc.in); got != tc.want {
			t.Errorf("Name(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestClosureOrder(t *testing.T) {
	g, err := ParseDeps(strings.NewReader(fakeDep))
	if err != nil {
		t.Fatal(err)
	}
	builtin := map[string]bool{"ext4": true}
	for _, tc := range []struct {
		names       []string
		want        string
		wantMissing string
	}{
		{[]string{"virtio_pci", "virtio_net"},
			"virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net", ""},
		{[]string{"virtio-net"}, "virtio_ring virtio failover net_failover virtio_net", ""},
		{[]string{"e1000", "e1000", "ext4", "nosuch"}, "e1000", "nosuch"},
		{[]string{"acpi_cpufreq"}, "acpi_cpufreq", ""},
		{nil, "", ""},
	} {
		paths, missing, err := g.Closure(tc.names, builtin)
		if err != nil {
			t.Errorf("%q: %v", tc.names, err)
			continue
		}
		var got []string
		for _, p := range paths {
			got = append(got, Name(p))
		}
		if strings.Join(got, " ") != tc.want || strings.Join(missing, " ") != tc.wantMissing {
			t.Errorf("Closure(%q) = %q missing %q, want %q missing %q", tc.names, got, missing, tc.want, tc.wantMissing)
		}
	}
}

func TestParseDepsErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a.ko\n", "line 1: no colon"},
		{"a.ko:\na.ko:\n", "line 2: a.ko listed twice"},
		{"/abs/a.ko:\n", `bad module path "/abs/a.ko"`},
		{"a.ko: ../../etc/shadow\n", `bad module path "../../etc/shadow"`},
		{"../a.ko:\n", `bad module path "../a.ko"`},
		{":\n", `bad module path ""`},
	} {
		_, err := ParseDeps(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseDeps(%q) = %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

func TestClosureErrors(t *testing.T) {
	for _, tc := range []struct{ dep, name, want string }{
		{"a.ko: b.ko\nb.ko: a.ko\n", "a", "cycle"},
		{"a.ko: b.ko\n", "a", "b.ko: dependency not listed"},
	} {
		g, err := ParseDeps(strings.NewReader(tc.dep))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := g.Closure([]string{tc.name}, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Closure over %q = %v, want an error with %q", tc.dep, err, tc.want)
		}
	}
}

func TestGraphWriteRead(t *testing.T) {
	var g Graph
	if err := g.Add("kernel/a/virtio.ko", nil); err != nil {
		t.Fatal(err)
	}
	if err := g.Add("kernel/b/virtio_net.ko", []string{"kernel/a/virtio.ko"}); err != nil {
		t.Fatal(err)
	}
	if err := g.Add("kernel/a/virtio.ko", nil); err == nil {
		t.Error("Add of a path twice: no error")
	}
	var b bytes.Buffer
	if _, err := g.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if want := "kernel/a/virtio.ko:\nkernel/b/virtio_net.ko: kernel/a/virtio.ko\n"; b.String() != want {
		t.Errorf("WriteTo = %q, want %q", b.String(), want)
	}
	file := filepath.Join(t.TempDir(), "modules.dep")
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := ReadDeps(file)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Paths(), g.Paths()) || !slices.Equal(back.Deps("kernel/b/virtio_net.ko"), []string{"kernel/a/virtio.ko"}) {
		t.Errorf("read back %q, deps %q; want %q", back.Paths(), back.Deps("kernel/b/virtio_net.ko"), g.Paths())
	}
	if _, err := ReadDeps(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadDeps(missing) = %v, want ErrNotExist", err)
	}
	os.WriteFile(file, []byte("x\n"), 0o644)
	if _, err := ReadDeps(file); err == nil || !strings.Contains(err.Error(), file+": line 1") {
		t.Errorf("ReadDeps(bad) = %v, want an error naming %s line 1", err, file)
	}
}

func TestParseBuiltin(t *testing.T) {
	got, err := ParseBuiltin(strings.NewReader("kernel/fs/ext4/ext4.ko\n\nkernel/drivers/ata/libata-core.ko\n"))
	if err != nil || len(got) != 2 || !got["ext4"] || !got["libata_core"] {
		t.Errorf("ParseBuiltin = %v, %v; want ext4 and libata_core", got, err)
	}
}

func FuzzParseDeps(f *testing.F) {
	f.Add(fakeDep)
	f.Add("a.ko: b.ko\nb.ko: a.ko\n")
	f.Add("x")
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseDeps(strings.NewReader(s))
		if err != nil {
			return
		}
		var names []string
		for _, p := range g.Paths() {
			names = append(names, Name(p))
		}
		paths, _, err := g.Closure(names, nil)
		if err != nil {
			return
		}
		// Every module comes after all of its dependencies.
		seen := map[string]bool{}
		for _, p := range paths {
			for _, d := range g.Deps(p) {
				if !seen[d] {
					t.Fatalf("%s before its dependency %s in %q", p, d, paths)
				}
			}
			seen[p] = true
		}
		// What is written reads back the same.
		var b bytes.Buffer
		g.WriteTo(&b)
		back, err := ParseDeps(&b)
		if err != nil || !slices.Equal(back.Paths(), g.Paths()) {
			t.Fatalf("written %q read back as %v, %v", b.String(), back, err)
		}
	})
}

func TestOnly(t *testing.T) {
	g, err := ParseDeps(strings.NewReader(`kernel/lib/crc16.ko:
kernel/net/sunrpc/sunrpc.ko:
kernel/fs/nfs/nfs.ko: kernel/net/sunrpc/sunrpc.ko
kernel/fs/nfs/nfsv4.ko: kernel/fs/nfs/nfs.ko kernel/net/sunrpc/sunrpc.ko
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko
kernel/drivers/x/x.ko: kernel/lib/crc16.ko
`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := g.Only([]string{"nfsv4", "ext4", "not-there"})
	want := []string{"kernel/net/sunrpc/sunrpc.ko", "kernel/fs/nfs/nfs.ko", "kernel/fs/nfs/nfsv4.ko", "kernel/fs/ext4/ext4.ko"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Only = %v, %v; want %v (crc16: x needs it too)", got, err, want)
	}
}
