package sendstats

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMasterAddr(t *testing.T) {
	dir := t.TempDir()
	withMaster := filepath.Join(dir, "a")
	os.WriteFile(withMaster, []byte("console=ttyS0 beo.master=10.54.0.1 beo.stats=6000 quiet\n"), 0o644)
	withMasters := filepath.Join(dir, "c")
	os.WriteFile(withMasters, []byte("beo.master=10.54.0.2 beo.masters=10.54.0.1,10.54.0.2,10.54.0.3 beo.stats=6000\n"), 0o644)
	withoutMaster := filepath.Join(dir, "b")
	os.WriteFile(withoutMaster, []byte("console=ttyS0\n"), 0o644)
	tests := []struct {
		arg, cmdline, want, err string
	}{
		{"10.0.0.1", "", "10.0.0.1:5545", ""},
		{"10.0.0.1:7000", "", "10.0.0.1:7000", ""},
		{"localhost", "", "127.0.0.1:5545", ""},
		{"[::1]:9", "", "[::1]:9", ""},
		{"", withMaster, "10.54.0.1:6000", ""},
		{"", withMasters, "10.54.0.2:6000 10.54.0.1:6000 10.54.0.3:6000", ""},
		{"", withoutMaster, "", "no beo.master="},
		{"", filepath.Join(dir, "missing"), "", "no MASTER given"},
		{"10.0.0.1:notaport", "", "", "master"},
	}
	for _, tt := range tests {
		all, err := masterAddrs(tt.arg, tt.cmdline)
		var got []string
		for _, a := range all {
			got = append(got, a.String())
		}
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("masterAddrs(%q, %q) error %v, want %q", tt.arg, tt.cmdline, err, tt.err)
		case tt.err == "" && (err != nil || strings.Join(got, " ") != tt.want):
			t.Errorf("masterAddrs(%q, %q) = %v, %v, want %s", tt.arg, tt.cmdline, got, err, tt.want)
		}
	}
}
