package mpi

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestMTL(t *testing.T) {
	none := t.TempDir()
	opa := t.TempDir()
	if err := os.WriteFile(filepath.Join(opa, "hfi1_0"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	both := t.TempDir()
	for _, n := range []string{"hfi1_0", "ipath0"} {
		if err := os.WriteFile(filepath.Join(both, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ system, dev, want string }{
		{"^ofi", none, "^ofi,psm2,psm"}, // Debian's exclusion kept
		{"", none, "^psm2,psm"},
		{" ^ofi , psm ", none, "^ofi,psm,psm2"},
		{"^psm2,psm", none, ""}, // nothing to add
		{"^ofi", opa, "^ofi,psm"},
		{"^ofi", both, ""},
		{"psm2", none, ""}, // the admin's choice
		{"ofi,psm", none, ""},
	} {
		if got := MTL(c.system, c.dev); got != c.want {
			t.Errorf("MTL(%q, %s) = %q, want %q", c.system, filepath.Base(c.dev), got, c.want)
		}
	}
}

func TestSystemParam(t *testing.T) {
	p := filepath.Join(t.TempDir(), "openmpi-mca-params.conf")
	if got := SystemParam(p, "mtl"); got != "" {
		t.Errorf("no file: %q", got)
	}
	src := "# mtl = psm\nbtl = ^openib\nmtl = ^ofi\n  mtl=^ofi,psm  \n" + BeginMarker + "\nmtl = ^ofi,psm,psm2\n" + EndMarker + "\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	// The last line outside beo's own block: what the file says without beo.
	if got := SystemParam(p, "mtl"); got != "^ofi,psm" {
		t.Errorf("mtl = %q, want ^ofi,psm", got)
	}
	if got := SystemParam(p, "pml"); got != "" {
		t.Errorf("pml = %q, want none", got)
	}
}

func TestDirEnv(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mpi")
	if env := DirEnv(dir); !slices.Equal(env, []string{"HYDRA_CONFIG_FILE=" + filepath.Join(dir, HydraConf)}) {
		t.Errorf("before the master wrote it: %q", env)
	}
	f := &Files{Dir: dir, Exe: "/usr/sbin/beo", MTL: "^ofi,psm2,psm"}
	if err := f.Setup(); err != nil {
		t.Fatal(err)
	}
	env := DirEnv(dir)
	if !slices.Equal(env, f.Env()) || !slices.Contains(env, "OMPI_MCA_mtl=^ofi,psm2,psm") {
		t.Errorf("DirEnv = %q, want Env %q", env, f.Env())
	}
}
