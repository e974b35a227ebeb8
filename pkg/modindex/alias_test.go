package modindex

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// fakeAlias is a distribution's modules.alias (depmod spells module
// names with '_'), with lines a node cannot use: a comment, a pattern
// path.Match rejects, a short line.
const fakeAlias = `# Aliases extracted from modules themselves.
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000001v* virtio_net
alias pci:v00008086d000010C9sv*sd*bc*sc*i* igb
alias pci:[v00008086 e1000
alias cpu:type:x86,ven*fam*mod*:feature:*0016* acpi-cpufreq
alias e1000
`

func TestUsableAliases(t *testing.T) {
	got, err := UsableAliases(strings.NewReader(fakeAlias))
	want := []Alias{
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "virtio_pci"},
		{"virtio:d00000001v*", "virtio_net"},
		{"pci:v00008086d000010C9sv*sd*bc*sc*i*", "igb"},
		{"cpu:type:x86,ven*fam*mod*:feature:*0016*", "acpi_cpufreq"},
	}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("UsableAliases = %q, %v; want %q", got, err, want)
	}
	if _, err := ParseAliases(strings.NewReader(fakeAlias)); err == nil || !strings.Contains(err.Error(), "line 5") {
		t.Errorf("ParseAliases of a distribution's file = %v, want an error at line 5", err)
	}
	var b bytes.Buffer
	if err := WriteAliases(&b, want); err != nil {
		t.Fatal(err)
	}
	back, err := ParseAliases(&b)
	if err != nil || !slices.Equal(back, want) {
		t.Errorf("written aliases read back as %q, %v; want %q", back, err, want)
	}
}

func TestParseAliasesErrors(t *testing.T) {
	for _, bad := range []string{
		"alias pci:v* \n",              // no module
		"options e1000 foo=1\n",        // not an alias line
		"alias pci:[v* e1000\n",        // a pattern path.Match rejects
		"alias a b c\n",                // too many fields
		"alias x y\nalias\n",           // second line short
		"alias x y\n" + "alias [ z\n",  // second line bad pattern
		"alias x y\n" + "nonsense!\n",  // second line garbage
		"alias x y\n" + "alias x\ty z", // tab-separated: 4 fields
	} {
		if _, err := ParseAliases(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseAliases(%q): no error, want one", bad)
		}
	}
	if l, err := ParseAliases(strings.NewReader("\n# comment\n")); err != nil || len(l) != 0 {
		t.Errorf("ParseAliases(blank and comment) = %q, %v; want nothing", l, err)
	}
}

func FuzzParseAliases(f *testing.F) {
	f.Add(fakeAlias)
	f.Add("alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n")
	f.Add("alias [ x\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := UsableAliases(strings.NewReader(s))
		if err != nil {
			return
		}
		// What the builder keeps, the node reads back unchanged.
		var b bytes.Buffer
		if err := WriteAliases(&b, l); err != nil {
			t.Fatal(err)
		}
		back, err := ParseAliases(&b)
		if err != nil || !slices.Equal(back, l) {
			t.Fatalf("%q written as %q read back as %q, %v", l, b.String(), back, err)
		}
	})
}
