package initramfs

import (
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

// fakeAlias is a modules.alias for fakeDep's tree (depmod spells module
// names with '_'), with lines the builder drops: a module not carried
// (igb), a comment, a pattern the node could not match, a short line.
const fakeAlias = `# Aliases extracted from modules themselves.
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000001v* virtio_net
alias pci:v00008086d000010C9sv*sd*bc*sc*i* igb
alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000
alias pci:[v00008086 e1000
alias cpu:type:x86,ven*fam*mod*:feature:*0016* acpi_cpufreq
alias e1000
`

func TestFilterAliases(t *testing.T) {
	keep := map[string]bool{"virtio_net": true, "acpi_cpufreq": true}
	got, err := filterAliases(strings.NewReader(fakeAlias), keep)
	want := "alias virtio:d00000001v* virtio_net\nalias cpu:type:x86,ven*fam*mod*:feature:*0016* acpi_cpufreq\n"
	if err != nil || string(got) != want {
		t.Errorf("filterAliases = %q, %v; want %q", got, err, want)
	}
	if got, err := filterAliases(strings.NewReader(""), keep); err != nil || len(got) != 0 {
		t.Errorf("filterAliases(empty) = %q, %v; want nothing", got, err)
	}
}

func TestClosureOrder(t *testing.T) {
	g, err := parseDeps(strings.NewReader(fakeDep))
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
		paths, missing, err := g.closure(tc.names, builtin)
		if err != nil {
			t.Errorf("%q: %v", tc.names, err)
			continue
		}
		var got []string
		for _, p := range paths {
			got = append(got, modName(p))
		}
		if strings.Join(got, " ") != tc.want || strings.Join(missing, " ") != tc.wantMissing {
			t.Errorf("closure(%q) = %q missing %q, want %q missing %q", tc.names, got, missing, tc.want, tc.wantMissing)
		}
	}
}

func TestParseDepsErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a.ko\n", "modules.dep:1: no colon"},
		{"a.ko:\na.ko:\n", "modules.dep:2: a.ko listed twice"},
		{"/abs/a.ko:\n", `bad module path "/abs/a.ko"`},
		{"a.ko: ../../etc/shadow\n", `bad module path "../../etc/shadow"`},
	} {
		_, err := parseDeps(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseDeps(%q) = %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

func TestClosureErrors(t *testing.T) {
	for _, tc := range []struct{ dep, name, want string }{
		{"a.ko: b.ko\nb.ko: a.ko\n", "a", "cycle"},
		{"a.ko: b.ko\n", "a", "b.ko: dependency not listed"},
	} {
		g, err := parseDeps(strings.NewReader(tc.dep))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := g.closure([]string{tc.name}, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("closure over %q = %v, want an error with %q", tc.dep, err, tc.want)
		}
	}
}

func FuzzParseDeps(f *testing.F) {
	f.Add(fakeDep)
	f.Add("a.ko: b.ko\nb.ko: a.ko\n")
	f.Add("x")
	f.Fuzz(func(t *testing.T, s string) {
		g, err := parseDeps(strings.NewReader(s))
		if err != nil {
			return
		}
		var names []string
		for n := range g.names {
			names = append(names, n)
		}
		paths, _, err := g.closure(names, nil)
		if err != nil {
			return
		}
		// Every module comes after all of its dependencies.
		seen := map[string]bool{}
		for _, p := range paths {
			for _, d := range g.deps[p] {
				if !seen[d] {
					t.Fatalf("%s before its dependency %s in %q", p, d, paths)
				}
			}
			seen[p] = true
		}
	})
}
