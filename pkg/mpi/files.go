package mpi

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/beo-cluster/beo/pkg/atomicfile"
	"github.com/beo-cluster/beo/pkg/beomap"
	"github.com/beo-cluster/beo/pkg/nodefs"
)

// The runtime directory's files (see the package doc).
const (
	AgentName       = "beorsh"
	OpenMPIHosts    = "openmpi-hostfile"
	MPICHHosts      = "mpich-hostfile"
	OpenMPIParams   = "openmpi-mca-params.conf"
	HydraConf       = "mpiexec.hydra.conf"
	EnvFile         = "env.sh"
	DefaultDir      = "/run/beowulf/mpi"
	hydraConfigEnv  = "HYDRA_CONFIG_FILE"
	ompiEnvPrefix   = "OMPI_MCA_"
	defaultDirMode  = 0o755
	defaultFileMode = 0o644
)

// Files is the runtime directory the master keeps for the launchers.
type Files struct {
	Dir   string // the directory; created if missing
	Exe   string // the beo binary the beorsh link points to
	Iface string // the cluster interface for hydra's -iface; "" for none
	MTL   string // OpenMPI's mtl parameter (see MTL); "" leaves the installed one

	last map[string][]byte // what Update wrote, so unchanged files are left alone
}

// Agent is the path of the beorsh link.
func (f *Files) Agent() string { return filepath.Join(f.Dir, AgentName) }

// NodeAgent is beorsh on a compute node: the applet link beside the node's
// beo binary (nodefs.Binary).
var NodeAgent = path.Join(path.Dir(nodefs.Binary), AgentName)

// AgentList is OpenMPI's plm_rsh_agent: the runtime directory's beorsh,
// then the node's (NodeAgent), as a list of agents to try in order
// ("A : B"). mpirun uses the first; orted, which checks the agent it is
// handed when it starts on a node even when it never launches through
// it (no tree spawn), finds the second there, where the master's
// runtime directory does not exist (orted would abort: "plm_rsh_agent
// was set to a path that could not be found").
func (f *Files) AgentList() string { return f.Agent() + " : " + NodeAgent }

// Params are OpenMPI's settings, as MCA parameter names and values.
func (f *Files) Params() [][2]string {
	p := [][2]string{
		{"plm_rsh_agent", f.AgentList()},
		{"plm_rsh_no_tree_spawn", "1"},
		{"orte_leave_session_attached", "1"},
		{"orte_no_vm", "1"},
		{"rmaps_base_oversubscribe", "1"},
		{"orte_default_hostfile", filepath.Join(f.Dir, OpenMPIHosts)},
	}
	if f.MTL != "" {
		p = append(p, [2]string{"mtl", f.MTL})
	}
	return p
}

// ParamsText is OpenMPI's settings in its parameter-file syntax.
func (f *Files) ParamsText() []byte {
	var b bytes.Buffer
	for _, p := range f.Params() {
		fmt.Fprintf(&b, "%s = %s\n", p[0], p[1])
	}
	return b.Bytes()
}

// HydraText is hydra's settings in its config-file syntax: one line of
// mpiexec options (a second line would start a second executable).
func (f *Files) HydraText() []byte {
	s := fmt.Sprintf("-launcher rsh -launcher-exec %s -f %s", f.Agent(), filepath.Join(f.Dir, MPICHHosts))
	if f.Iface != "" {
		s += " -iface " + f.Iface
	}
	return []byte(s + "\n")
}

// Env is the environment that points a user's launchers at the directory:
// OpenMPI's parameters as OMPI_MCA_ variables (which override its
// parameter files, as the command line overrides them), and
// HYDRA_CONFIG_FILE.
func (f *Files) Env() []string { return env(f.Dir, f.Params()) }

// DirEnv is the environment of the runtime directory dir that a master
// keeps: Env from the parameters it wrote there (none before it has).
func DirEnv(dir string) []string {
	src, _ := os.ReadFile(filepath.Join(dir, OpenMPIParams))
	return env(dir, parseParams(src))
}

func env(dir string, params [][2]string) []string {
	var env []string
	for _, p := range params {
		env = append(env, ompiEnvPrefix+p[0]+"="+p[1])
	}
	return append(env, hydraConfigEnv+"="+filepath.Join(dir, HydraConf))
}

// EnvText is env.sh: Env as a shell script.
func (f *Files) EnvText() []byte {
	var b bytes.Buffer
	b.WriteString("# Written by beo master: the stock mpirun (OpenMPI) and mpirun.mpich (hydra) start\n")
	b.WriteString("# their daemons on the cluster's nodes through beorsh, ranks placed least loaded first.\n")
	b.WriteString("# Use: . " + filepath.Join(f.Dir, EnvFile) + "\n")
	for _, e := range f.Env() {
		k, v, _ := strings.Cut(e, "=")
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
	}
	return b.Bytes()
}

// Setup makes the directory, the beorsh link and the settings files.
func (f *Files) Setup() error {
	if f.Exe == "" {
		return errors.New("mpi files: no beo binary to link beorsh to")
	}
	if err := os.MkdirAll(f.Dir, defaultDirMode); err != nil {
		return fmt.Errorf("mpi files: %w", err)
	}
	if err := os.Chmod(f.Dir, defaultDirMode); err != nil {
		return fmt.Errorf("mpi files: %w", err)
	}
	if cur, err := os.Readlink(f.Agent()); err != nil || cur != f.Exe {
		tmp := f.Agent() + ".new"
		os.Remove(tmp)
		if err := os.Symlink(f.Exe, tmp); err != nil {
			return fmt.Errorf("mpi files: %w", err)
		}
		if err := os.Rename(tmp, f.Agent()); err != nil {
			return fmt.Errorf("mpi files: %w", err)
		}
	}
	for name, data := range map[string][]byte{OpenMPIParams: f.ParamsText(), HydraConf: f.HydraText(), EnvFile: f.EnvText()} {
		if err := f.write(name, data); err != nil {
			return err
		}
	}
	// Until the first Update: the master alone.
	return f.Update(nil)
}

// Update writes the default hostfiles for nodes (see DefaultMap) where
// they change.
func (f *Files) Update(nodes []beomap.Node) error {
	m, addrs := DefaultMap(nodes), Addrs(nodes)
	if err := f.write(OpenMPIHosts, Hostfile(OpenMPI, m, addrs)); err != nil {
		return err
	}
	return f.write(MPICHHosts, Hostfile(MPICH, m, addrs))
}

func (f *Files) write(name string, data []byte) error {
	if f.last == nil {
		f.last = map[string][]byte{}
	}
	if prev, ok := f.last[name]; ok && bytes.Equal(prev, data) {
		return nil
	}
	if err := atomicfile.WriteFile(filepath.Join(f.Dir, name), data, defaultFileMode); err != nil {
		return fmt.Errorf("mpi files: %w", err)
	}
	f.last[name] = data
	return nil
}

// Remove deletes the directory's files (a stopping master).
func (f *Files) Remove() error {
	var errs []error
	for _, n := range []string{AgentName, OpenMPIHosts, MPICHHosts, OpenMPIParams, HydraConf, EnvFile} {
		if err := os.Remove(filepath.Join(f.Dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	os.Remove(f.Dir) // only if empty
	f.last = nil
	return errors.Join(errs...)
}

// shellQuote quotes s for sh when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:=,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
