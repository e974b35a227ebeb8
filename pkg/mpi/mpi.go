// Package mpi joins the distribution's stock MPI launchers — OpenMPI's
// mpirun (ORTE, rsh launcher) and MPICH's mpiexec.hydra (rsh launcher) —
// to the cluster, so a user runs `mpirun -np 8 ./a.out` on the master as
// on Scyld, with no hostfile, and the ranks land on the least loaded up
// nodes.
//
// # How the launchers reach the nodes
//
// Both launchers start one daemon per node (orted, hydra_pmi_proxy)
// through a remote shell, `AGENT HOST COMMAND-LINE`, and the daemons then
// connect back to the launcher over TCP. beorsh (applets/beorsh) is that
// agent: it runs the command line on the node named HOST through the
// master. The settings each launcher needs:
//
//	OpenMPI (MCA parameters)              MPICH hydra (options)
//	plm_rsh_agent = DIR/beorsh : /beo/bin/beorsh   -launcher rsh -launcher-exec DIR/beorsh
//	orte_default_hostfile = DIR/openmpi-hostfile   -f DIR/mpich-hostfile
//	plm_rsh_no_tree_spawn = 1             -iface IFACE (the cluster interface, when known)
//	orte_leave_session_attached = 1
//	orte_no_vm = 1
//	rmaps_base_oversubscribe = 1
//	mtl = ^ofi,psm2,psm (see MTL)
//
// The agent is a list for OpenMPI: mpirun takes the first, DIR/beorsh;
// orted, which checks the agent it is handed when it starts on a node
// (tree spawn or not), finds the node's own link (NodeAgent).
//
// No tree spawn: every orted is started from mpirun on the master, never
// by another orted on a node, so nodes need no beorsh of their own.
// Session attached: orted stays in the foreground of its beorsh instead
// of daemonizing, so the daemon lives exactly as long as its beorsh —
// a node that goes down makes its beorsh fail, which ends the job
// (ORTE aborts, killing the ranks on every other node), and a launcher
// that dies takes its daemons with it. No VM: ORTE starts daemons only
// on the nodes the job's ranks go to, not on every node of the default
// hostfile (its "virtual machine": all the cluster's nodes for
// `mpirun -np 1`); the price: OpenMPI 4.1's mpirun crashes when a
// program's MPI_Comm_spawn needs a node without a daemon yet, so a
// program that spawns runs with `--mca orte_no_vm 0` (README).
// Oversubscribe: more ranks than the hostfile's slots (CPUs) are placed
// anyway, after every slot has one, as beomap does and
// as hydra does by itself — OpenMPI would refuse `mpirun -np 16` on
// twelve CPUs; `mpirun --nooversubscribe` (or beomap's NO_OVER with a
// beomap hostfile) refuses instead. -iface: hydra's proxies connect
// to the address of that interface, not to the launcher's host name,
// which nodes may not resolve. mtl: the installed exclusions plus the
// PSM transports of fabrics the master has no adapter of, which every
// rank's MPI_Init would otherwise load and probe (MTL).
//
// # On the nodes
//
// The daemons and ranks run the master's /usr over NFS (the fstab), in
// mpirun's working directory, which must have the same path there (the
// users' /home). A node mirroring the master's /usr gets copies of
// /etc/alternatives and /etc/openmpi with it (pkg/master UsrEtc): without
// Debian's system MCA parameters the ranks on nodes chose other
// transports than rank 0's. Debian 12's MPICH 4.0.2 (ch4:ucx) may
// deadlock in MPI_Finalize over TCP when ranks run at very different
// speeds; no setting here avoids it (README, "Parallel jobs and MPI").
//
// # The runtime directory
//
// The master keeps DIR (Files; /run/beowulf/mpi next to the client
// socket, DIR/mpi in beo sim and beo lab) current:
//
//	beorsh                    a link to the beo binary (hydra execs the agent's path as it is)
//	openmpi-hostfile          the default map: `localhost slots=1`, then every up node
//	mpich-hostfile            anyone may use, least loaded CPUs first, slots = its CPUs
//	openmpi-mca-params.conf   OpenMPI's settings above
//	mpiexec.hydra.conf        hydra's settings above (its config-file format: one line of options)
//	env.sh                    the one line a user sources: OMPI_MCA_* and HYDRA_CONFIG_FILE
//
// The hostfiles are rewritten (atomically) whenever the node table or the
// nodes' load changes what they say. OpenMPI fills the slots of a
// hostfile in order, hydra too: `mpirun -np 4` puts rank 0 on the master
// (Scyld's default) and the others on the least loaded CPUs, as beomap
// would for NP=4. What the shared default cannot know is the caller: it
// lists the nodes whose mode lets anyone run (the execute bit for
// others), and none of NO_LOCAL, EXCLUDE or BEOWULF_JOB_MAP. For a map of
// one's own, `beomap --hostfile openmpi|mpich` writes the map these ask
// for as a hostfile (HostfileFor).
//
// # System-wide defaults
//
// `beo master -mpi` makes the settings every user's: Install writes them
// as a managed block ("# BEGIN beo" … "# END beo") into OpenMPI's
// system parameter file (ompi_info's sysconfdir/openmpi-mca-params.conf)
// and into hydra's system config file (the path compiled into
// mpiexec.hydra, /usr/etc/mpiexec.hydra.conf on Debian), and Remove takes
// the blocks out again, leaving every other line as it was: when that
// master stops, and when a master with the same runtime directory starts
// without -mpi (after a crash).
// Without them, one line does it for a user: `. /run/beowulf/mpi/env.sh`.
// A hostfile or host list given to mpirun wins over the defaults, as
// always.
package mpi

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/beo-cluster/beo/pkg/beomap"
)

// Flavor is an MPI implementation's launcher.
type Flavor int

const (
	OpenMPI Flavor = iota // OpenMPI's mpirun (ORTE)
	MPICH                 // MPICH's mpiexec.hydra
)

// ParseFlavor reads a flavor name: openmpi (ompi) or mpich (hydra).
func ParseFlavor(s string) (Flavor, error) {
	switch strings.ToLower(s) {
	case "openmpi", "ompi", "open-mpi":
		return OpenMPI, nil
	case "mpich", "hydra":
		return MPICH, nil
	}
	return 0, fmt.Errorf("MPI %q: want openmpi or mpich", s)
}

func (f Flavor) String() string {
	if f == MPICH {
		return "mpich"
	}
	return "openmpi"
}

// HostName is the name a hostfile gives node n: its address when known
// (addrs[n]), else nN; localhost for the master. An address, because a
// launcher resolves every name of its hostfile and a name the resolver
// does not know costs a DNS timeout each (20 s for 64 nodes), and
// because OpenMPI cuts a name at its first dot (`.3` would be lost);
// beorsh takes either.
func HostName(n int, addrs map[int]string) string {
	if n == beomap.Master {
		return "localhost"
	}
	if a := addrs[n]; a != "" {
		return a
	}
	return "n" + strconv.Itoa(n)
}

// Addrs returns the addresses of nodes, for HostName.
func Addrs(nodes []beomap.Node) map[int]string {
	out := make(map[int]string, len(nodes))
	for _, n := range nodes {
		if n.Addr != "" {
			out[n.Num] = n.Addr
		}
	}
	return out
}

// Hostfile writes the job map m as a hostfile of flavor f: one line per
// run of equal entries, with its count as slots (OpenMPI `HOST slots=2`,
// MPICH `HOST:2`; HOST as HostName says). A launcher that fills a
// hostfile's slots in order (both do, given as many processes as the map
// has entries) then places rank i on m[i] when m's entries of a node are
// consecutive, as beomap makes them.
func Hostfile(f Flavor, m []int, addrs map[int]string) []byte {
	var b bytes.Buffer
	for i := 0; i < len(m); {
		j := i
		for j < len(m) && m[j] == m[i] {
			j++
		}
		host := HostName(m[i], addrs)
		if f == MPICH {
			fmt.Fprintf(&b, "%s:%d\n", host, j-i)
		} else {
			fmt.Fprintf(&b, "%s slots=%d\n", host, j-i)
		}
		i = j
	}
	return b.Bytes()
}

// DefaultMap is the map the shared default hostfiles hold: the master
// once, then every usable node as many times as it has CPUs (at least
// once), least loaded CPUs first ((load)/CPUs, ties to the lower node).
func DefaultMap(nodes []beomap.Node) []int {
	var cands []beomap.Node
	for _, n := range nodes {
		if n.Usable {
			n.CPUs = max(n.CPUs, 1)
			cands = append(cands, n)
		}
	}
	slices.SortStableFunc(cands, func(a, b beomap.Node) int {
		sa, sb := a.Load/float64(a.CPUs), b.Load/float64(b.CPUs)
		switch {
		case sa < sb:
			return -1
		case sa > sb:
			return 1
		}
		return a.Num - b.Num
	})
	m := []int{beomap.Master}
	for _, n := range cands {
		for range n.CPUs {
			m = append(m, n.Num)
		}
	}
	return m
}
