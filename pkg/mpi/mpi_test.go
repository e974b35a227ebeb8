package mpi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/pkg/beomap"
)

func TestHostfile(t *testing.T) {
	m := []int{-1, 0, 0, 1, 2, 2, 2}
	addrs := map[int]string{0: "10.0.0.10", 2: "10.0.0.12"} // node 1's unknown: n1
	if got, want := string(Hostfile(OpenMPI, m, addrs)), "localhost slots=1\n10.0.0.10 slots=2\nn1 slots=1\n10.0.0.12 slots=3\n"; got != want {
		t.Errorf("OpenMPI: got %q, want %q", got, want)
	}
	if got, want := string(Hostfile(MPICH, m, addrs)), "localhost:1\n10.0.0.10:2\nn1:1\n10.0.0.12:3\n"; got != want {
		t.Errorf("MPICH: got %q, want %q", got, want)
	}
	// A node that comes back later gets a line of its own: rank order is kept.
	if got, want := string(Hostfile(MPICH, []int{0, 1, 0}, nil)), "n0:1\nn1:1\nn0:1\n"; got != want {
		t.Errorf("interleaved: got %q, want %q", got, want)
	}
}

func TestDefaultMap(t *testing.T) {
	nodes := []beomap.Node{
		{Num: 0, Usable: true, CPUs: 2, Load: 1.5},
		{Num: 1, Usable: false, CPUs: 8},
		{Num: 2, Usable: true, CPUs: 4, Load: 0.4},
		{Num: 3, Usable: true}, // no stats: one idle CPU
	}
	if got, want := beomap.Format(DefaultMap(nodes)), "-1:3:2:2:2:2:0:0"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got := beomap.Format(DefaultMap(nil)); got != "-1" {
		t.Errorf("no nodes: got %s, want -1", got)
	}
}

func TestBlock(t *testing.T) {
	orig := "# the admin's\nbtl = ^openib\n"
	in, err := setBlock([]byte(orig), []byte("a = 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := orig + BeginMarker + "\na = 1\n" + EndMarker + "\n"
	if string(in) != want {
		t.Fatalf("set: got %q, want %q", in, want)
	}
	again, _ := setBlock(in, []byte("a = 2\n"))
	if strings.Count(string(again), "a = ") != 1 || !strings.Contains(string(again), "a = 2") {
		t.Errorf("replace: got %q", again)
	}
	out, err := removeBlock(again)
	if err != nil || string(out) != orig {
		t.Errorf("remove: got %q, %v; want the admin's lines back", out, err)
	}
	if _, err := removeBlock([]byte(BeginMarker + "\nx\n")); err != ErrMarkers {
		t.Errorf("a BEGIN without END: got %v, want ErrMarkers", err)
	}
}

func TestInstallRemove(t *testing.T) {
	dir := t.TempDir()
	sys := System{OpenMPI: filepath.Join(dir, "etc/openmpi/openmpi-mca-params.conf"), Hydra: filepath.Join(dir, "usr/etc/mpiexec.hydra.conf")}
	os.MkdirAll(filepath.Dir(sys.OpenMPI), 0o755)
	os.WriteFile(sys.OpenMPI, []byte("# Debian's\n"), 0o644)
	f := &Files{Dir: "/run/beowulf/mpi", Exe: "/usr/sbin/beo", Iface: "eth1"}
	changed, err := Install(f, sys)
	if err != nil || len(changed) != 2 {
		t.Fatalf("install: %v %v", changed, err)
	}
	o, _ := os.ReadFile(sys.OpenMPI)
	h, _ := os.ReadFile(sys.Hydra)
	if !strings.Contains(string(o), "plm_rsh_agent = /run/beowulf/mpi/beorsh : /beo/bin/beorsh\n") || !strings.HasPrefix(string(o), "# Debian's\n") {
		t.Errorf("OpenMPI file: %q", o)
	}
	if !strings.Contains(string(h), "-launcher rsh -launcher-exec /run/beowulf/mpi/beorsh -f /run/beowulf/mpi/mpich-hostfile -iface eth1\n") {
		t.Errorf("hydra file: %q", h)
	}
	if changed, _ := Install(f, sys); len(changed) != 0 {
		t.Errorf("second install changed %v", changed)
	}
	if changed, err := Remove(&Files{Dir: "/elsewhere"}, sys); err != nil || len(changed) != 0 {
		t.Fatalf("another master's Remove: %v %v, want nothing changed", changed, err)
	}
	if _, err := Remove(f, sys); err != nil {
		t.Fatal(err)
	}
	if o, _ := os.ReadFile(sys.OpenMPI); string(o) != "# Debian's\n" {
		t.Errorf("after remove: %q, want Debian's line alone", o)
	}
	if _, err := os.Stat(sys.Hydra); !os.IsNotExist(err) {
		t.Errorf("hydra file holding only the block: %v, want it removed", err)
	}
}

func TestHydraConfPath(t *testing.T) {
	bin := []byte("\x00junk\x00%s/.mpiexec.hydra.conf\x00HYDRA_CONFIG_FILE\x00/usr/etc/mpiexec.hydra.conf\x00more")
	if got := hydraConfPath(bin); got != "/usr/etc/mpiexec.hydra.conf" {
		t.Errorf("got %q", got)
	}
	if p := FindSystem(t.Context()); p.Hydra != "" || p.OpenMPI != "" {
		t.Logf("installed here: %+v", p)
	}
}

func TestFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mpi")
	f := &Files{Dir: dir, Exe: "/usr/sbin/beo"}
	if err := f.Setup(); err != nil {
		t.Fatal(err)
	}
	if l, _ := os.Readlink(f.Agent()); l != "/usr/sbin/beo" {
		t.Errorf("beorsh link: %q", l)
	}
	if h, _ := os.ReadFile(filepath.Join(dir, OpenMPIHosts)); string(h) != "localhost slots=1\n" {
		t.Errorf("first hostfile: %q", h)
	}
	if err := f.Update([]beomap.Node{{Num: 0, Usable: true, CPUs: 2, Addr: "10.1.0.5"}}); err != nil {
		t.Fatal(err)
	}
	if h, _ := os.ReadFile(filepath.Join(dir, MPICHHosts)); string(h) != "localhost:1\n10.1.0.5:2\n" {
		t.Errorf("updated hostfile: %q", h)
	}
	env, _ := os.ReadFile(filepath.Join(dir, EnvFile))
	if !strings.Contains(string(env), "export OMPI_MCA_plm_rsh_agent='"+dir+"/beorsh : /beo/bin/beorsh'\n") || !strings.Contains(string(env), "export HYDRA_CONFIG_FILE="+dir+"/mpiexec.hydra.conf\n") {
		t.Errorf("env.sh: %q", env)
	}
	if err := f.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("after Remove: %v", err)
	}
}
