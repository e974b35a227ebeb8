package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// TestExample: the commented example parses with no diagnostics to the
// settings of Default.
func TestExample(t *testing.T) {
	opt := Options{Masters: []netip.Addr{addr("10.99.0.1")}}
	c, err := Parse(DefaultPath, []byte(ExampleText), opt)
	if err != nil || len(c.Diags()) != 0 {
		t.Fatalf("example: got error %v, diagnostics\n%s", err, diagList(c.Diags()))
	}
	if got, want := meaning(c), meaning(Default()); !reflect.DeepEqual(got, want) {
		t.Errorf("example differs from Default:\ngot  %+v\nwant %+v", got, want)
	}
	// The optional directives shown commented out are right too.
	all := strings.ReplaceAll(ExampleText, "\n#   ", "\n")
	if all == ExampleText {
		t.Fatal("example shows no optional directive")
	}
	if c, err := Parse(DefaultPath, []byte(all), opt); err != nil || len(c.Diags()) != 0 {
		t.Errorf("example with its optional directives: got error %v, diagnostics\n%s", err, diagList(c.Diags()))
	}
	// Every directive has a comment: on the line above, or after it.
	lines := strings.Split(ExampleText, "\n")
	for i, l := range lines {
		if l == "" || strings.HasPrefix(l, "#") || strings.Contains(l, " # ") {
			continue
		}
		if i == 0 || !strings.HasPrefix(lines[i-1], "#") {
			t.Errorf("line %d %q has no comment", i+1, l)
		}
	}
}

// meaning returns c without what depends on where things are written:
// the file name, diagnostics and line numbers.
func meaning(c *Config) Config {
	m := *c
	m.file, m.diags = "", nil
	m.ipRange.Line = 0
	m.hostRanges = append([]Range(nil), c.hostRanges...)
	for i := range m.hostRanges {
		m.hostRanges[i].Line = 0
	}
	m.names = append([]NamePattern(nil), c.names...)
	for i := range m.names {
		m.names[i].Line = 0
	}
	return m
}
