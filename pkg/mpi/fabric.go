package mpi

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// psmDevices are the fabrics OpenMPI's PSM matching transports (MTLs)
// drive, by the device files their drivers make: Intel Omni-Path (hfi1,
// the psm2 MTL) and QLogic/Intel InfiniPath (qib, the psm MTL).
var psmDevices = []struct{ glob, mtl string }{
	{"hfi1*", "psm2"},
	{"ipath*", "psm"},
}

// MTL is the value of OpenMPI's mtl parameter for a cluster whose
// master's device directory is dev (/dev), given system, the value the
// installed parameter file sets ("" when none): system with the PSM
// transports of the fabrics the master has no device of excluded, or ""
// when there is nothing to add.
//
// Every rank's MPI_Init opens each MTL it is not told to skip, and each
// PSM library probes for its adapter: on this machine 0.1 s of each
// rank's start-up per library (`mpirun -np 2 hello` 0.36 s → 0.15 s
// without both), more on an emulated node loading them over NFS, for
// hardware an Ethernet cluster does not have. The master's devices stand
// for the nodes': a cluster whose nodes have PSM adapters has them on
// its head node too, or its admin names the MTLs to use — an inclusive
// system value (no leading ^) is the admin's choice and is left alone.
// The result keeps the system value's own exclusions (Debian's ^ofi),
// which an OMPI_MCA_mtl variable would otherwise replace.
func MTL(system, dev string) string {
	var skip []string
	for _, d := range psmDevices {
		if m, _ := filepath.Glob(filepath.Join(dev, d.glob)); len(m) == 0 {
			skip = append(skip, d.mtl)
		}
	}
	system = strings.TrimSpace(system)
	if len(skip) == 0 || system != "" && !strings.HasPrefix(system, "^") {
		return ""
	}
	var list []string
	for _, s := range strings.Split(strings.TrimPrefix(system, "^"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			list = append(list, s)
		}
	}
	n := len(list)
	for _, s := range skip {
		if !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	if len(list) == n {
		return ""
	}
	return "^" + strings.Join(list, ",")
}

// MTL is MTL for the mtl value of s's OpenMPI parameter file.
func (s System) MTL(dev string) string { return MTL(SystemParam(s.OpenMPI, "mtl"), dev) }

// SystemParam is the value OpenMPI's parameter file at path gives name
// ("" when none, or no file), outside the beo block: the file's last
// line naming it, as OpenMPI reads it.
func SystemParam(path, name string) string {
	src, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if src, err = removeBlock(src); err != nil {
		return ""
	}
	return lookup(parseParams(src), name)
}

// parseParams reads OpenMPI's parameter-file syntax: `name = value`
// lines; blank lines and # comments skipped.
func parseParams(src []byte) [][2]string {
	var out [][2]string
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out = append(out, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	return out
}

// lookup is the last value params gives name.
func lookup(params [][2]string, name string) string {
	v := ""
	for _, p := range params {
		if p[0] == name {
			v = p[1]
		}
	}
	return v
}
