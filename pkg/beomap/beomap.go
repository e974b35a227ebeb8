// Package beomap is the job mapper of Scyld's beomap: it decides on which
// nodes the processes of a parallel job run, in rank order. beomap prints
// the map, beorun starts a program on every entry at once, mpprun on the
// entries one after another, and the stock mpirun of OpenMPI and MPICH get
// it as a hostfile (pkg/mpi).
//
// # The map
//
// A job map is a colon-separated list of node numbers, one per process,
// rank 0 first; -1 is the master:
//
//	-1:0:0:1:2     rank 0 on the master, ranks 1 and 2 on node 0, 3 on node 1, 4 on node 2
//
// # Parameters
//
// As options or environment variables:
//
//	--np N          NP=N               number of processes, 1 to MaxNP (1048576); default 1
//	--all-cpus      ALL_CPUS=1         one process per CPU of every usable node
//	--all-nodes     ALL_NODES=1        one process on every usable node
//	--all-local     ALL_LOCAL=1        every process on the master
//	--no-local      NO_LOCAL=1         no process on the master (rank 0 on a node)
//	--exclude LIST  EXCLUDE=LIST       never these nodes
//	--map LIST      BEOWULF_JOB_MAP=LIST   this map, as given
//	--no-over       NO_OVER=1          never more processes than CPUs on a node: refuse instead
//
// LIST is node numbers or names (5, n5, .5, 1-3, -1 or master) separated
// by colons or commas; an empty item ("0::1", "0:1:") is an error, never
// skipped, since a map's items are its ranks. A boolean variable is true
// unless it is empty, 0, no, false or off; an empty NP, EXCLUDE or
// BEOWULF_JOB_MAP is unset. An explicitly empty --map or --np is an
// error; --exclude "" excludes nothing (it overrides EXCLUDE).
//
// Some parameters contradict each other:
//
//	--map         and --np, --all-cpus, --all-nodes, --all-local, --no-local, --exclude
//	--all-cpus    and --all-nodes, --all-local, --np
//	--all-nodes   and --all-local, --np
//	--all-local   and --no-local, --exclude
//
// The one rule for them (Flags.Merge): an option replaces its own
// variable and every variable that contradicts it (ALL_LOCAL=1 beomap
// --no-local ignores ALL_LOCAL; BEOWULF_JOB_MAP=0:1 beomap --np 3 ignores
// the map); two options that contradict each other are an error, and so
// are two variables that do, once the options have had their say
// (ALL_LOCAL=1 NO_LOCAL=1 is an error naming both: nothing says which
// one was meant). BEOWULF_JOB_MAP with EXCLUDE or NO_LOCAL, both
// variables (one kept in a profile, one set for a run), is the exception:
// the map is checked against them, and only one that puts a process on
// an excluded node or, under NO_LOCAL, on the master is an error
// (EXCLUDE=0 BEOWULF_JOB_MAP=0:1). --all-local with NP: NP says how many. A bad
// value is an error naming the option or variable it came from; the
// commands report all of these as usage errors (exit 2).
//
// How the map is made:
//
//   - --map: the map as given; each entry must be the master or a node
//     that is up and usable by the caller (else an error naming it).
//     Its length is the number of processes.
//   - Otherwise the master takes rank 0 (Scyld's default: the rank that
//     does a job's I/O runs where the user is) unless --no-local or the
//     master is in the exclude list; --all-local puts every process there.
//   - The other ranks go to the candidates: compute nodes that are up,
//     that the caller may use (root: any up node; others: the node's
//     owner, group and mode pass the execute check, as bpsh checks) and
//     that are not excluded. --all-nodes takes each once, --all-cpus each
//     as many times as it has CPUs, both in node order.
//   - --np: one process at a time goes to the node whose CPUs are least
//     loaded, counting the ones already placed:
//     (load average + processes placed) / CPUs, ties to the lower node
//     number. So idle CPUs fill first and a node gets a second process per
//     CPU only when every candidate is as busy: oversubscribing only when
//     it must. With --no-over (NO_OVER) a job with more processes than
//     the candidates have CPUs is refused, and so is an explicit map that
//     puts more processes on a node than it has CPUs (the master is not
//     counted, there or in --all-local). A node's ranks are consecutive
//     (nodes in the order they were first chosen), so an MPI hostfile can
//     say the same thing.
//
// CPU counts and load averages come from the stats the nodes send the
// master (recvstats, as beostat shows them). A node without stats (no
// recvstats running, or none sent yet) counts as one idle CPU; Nodes
// reports whether any stats were found.
package beomap

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/beo-cluster/beo/pkg/nodespec"
)

// Master is the master's entry in a map.
const Master = nodespec.Master

// The environment variables of the map parameters.
const (
	EnvNP       = "NP"
	EnvAllCPUs  = "ALL_CPUS"
	EnvAllNodes = "ALL_NODES"
	EnvAllLocal = "ALL_LOCAL"
	EnvNoLocal  = "NO_LOCAL"
	EnvExclude  = "EXCLUDE"
	EnvMap      = "BEOWULF_JOB_MAP"
	EnvNoOver   = "NO_OVER"
)

// Params are a job's map parameters. Zero values mean "not given".
type Params struct {
	NP       int   // number of processes; 0: not given (1)
	AllCPUs  bool  // one process per CPU of every candidate
	AllNodes bool  // one process per candidate
	AllLocal bool  // every process on the master
	NoLocal  bool  // no process on the master
	NoOver   bool  // refuse rather than oversubscribe
	Exclude  []int // nodes never used (-1: the master)
	Map      []int // an explicit map; nil: not given
}

// Node is what the mapper knows of one compute node.
type Node struct {
	Num    int
	Usable bool    // up, and the caller may run on it
	Why    string  // why not, when not Usable ("down", "permission denied …")
	CPUs   int     // from its stats; 0: unknown, counted as 1
	Load   float64 // 1-minute load average from its stats
	Addr   string  // its address ("" unknown): how MPI hostfiles name it
}

// Compute makes the map for p from the nodes, which are indexed by node
// number (nodes[i].Num == i). See the package doc.
func Compute(p Params, nodes []Node) ([]int, error) {
	if p.NP < 0 || p.NP > MaxNP {
		return nil, fmt.Errorf("np %d: want a number of processes from 1 to %d", p.NP, MaxNP)
	}
	if err := p.contradictions(); err != nil {
		return nil, err
	}
	if p.Map != nil {
		if err := p.mapAllowed(); err != nil {
			return nil, err
		}
		return checkMap(p.Map, p.NoOver, nodes)
	}
	excluded := map[int]bool{}
	for _, n := range p.Exclude {
		excluded[n] = true
	}
	local := !p.NoLocal && !excluded[Master]
	np := p.NP
	if np == 0 {
		np = 1
	}
	if p.AllLocal { // neither NoLocal nor Exclude: contradictions
		return slices.Repeat([]int{Master}, np), nil
	}
	var cands []Node
	for _, n := range nodes {
		if n.Usable && !excluded[n.Num] {
			if n.CPUs < 1 {
				n.CPUs = 1
			}
			cands = append(cands, n)
		}
	}
	var out []int
	if local {
		out = append(out, Master)
	}
	switch {
	case p.AllCPUs || p.AllNodes:
		for _, n := range cands {
			k := 1
			if p.AllCPUs {
				k = n.CPUs
			}
			for range k {
				out = append(out, n.Num)
			}
		}
		if len(out) == 0 {
			return nil, noNodes(nodes, excluded)
		}
		return out, nil
	}
	rest := np - len(out)
	if rest <= 0 {
		return out, nil
	}
	if len(cands) == 0 {
		return nil, noNodes(nodes, excluded)
	}
	cpus := 0
	for _, n := range cands {
		cpus += n.CPUs
	}
	if p.NoOver && rest > cpus {
		return nil, fmt.Errorf("NO_OVER: %s to place on %s with %s: refusing to oversubscribe",
			plural(rest, "process", "processes"), plural(len(cands), "usable node", "usable nodes"), plural(cpus, "CPU", "CPUs"))
	}
	return append(out, place(rest, cands)...), nil
}

// place puts k processes on cands, least loaded CPUs first, and returns
// them grouped by node in the order the nodes were first chosen.
func place(k int, cands []Node) []int {
	count := make([]int, len(cands))
	var order []int // indexes into cands, by first choice
	for range k {
		best := -1
		var bestScore float64
		for i, n := range cands {
			s := (n.Load + float64(count[i])) / float64(n.CPUs)
			if best < 0 || s < bestScore {
				best, bestScore = i, s
			}
		}
		if count[best] == 0 {
			order = append(order, best)
		}
		count[best]++
	}
	out := make([]int, 0, k)
	for _, i := range order {
		for range count[i] {
			out = append(out, cands[i].Num)
		}
	}
	return out
}

// contradictions refuses parameters that contradict each other, by the
// rule Flags.Merge applies to options and variables.
func (p Params) contradictions() error {
	given := map[string]bool{
		"np": p.NP != 0, "all-cpus": p.AllCPUs, "all-nodes": p.AllNodes, "all-local": p.AllLocal,
		"no-local": p.NoLocal, "exclude": p.Exclude != nil, "map": p.Map != nil,
	}
	names := []string{"np", "all-cpus", "all-nodes", "all-local", "no-local", "exclude", "map"}
	for i, a := range names {
		for _, b := range names[i+1:] {
			if given[a] && given[b] && contradict(a, b) && !checkedAgainstMap(a, b) {
				return fmt.Errorf("%s and %s exclude each other", a, b)
			}
		}
	}
	return nil
}

// mapAllowed checks an explicit map against the exclusions given with it
// (variables: see checkedAgainstMap).
func (p Params) mapAllowed() error {
	for i, n := range p.Map {
		switch {
		case n == Master && p.NoLocal:
			return fmt.Errorf("the job map puts process %d on the master, which NO_LOCAL excludes", i)
		case slices.Contains(p.Exclude, n):
			return fmt.Errorf("the job map puts process %d on node %d, which EXCLUDE excludes", i, n)
		}
	}
	return nil
}

// checkMap checks an explicit map: the master, or nodes the caller may
// use; with noOver, no node with more entries than CPUs.
func checkMap(m []int, noOver bool, nodes []Node) ([]int, error) {
	if len(m) == 0 {
		return nil, errors.New("empty job map")
	}
	if len(m) > MaxNP {
		return nil, fmt.Errorf("job map: %d entries: more than %d processes", len(m), MaxNP)
	}
	for _, n := range m {
		switch {
		case n == Master:
		case n < 0 || n >= len(nodes):
			return nil, fmt.Errorf("job map: node %d: no such node (cluster has %s)", n, plural(len(nodes), "node", "nodes"))
		case !nodes[n].Usable:
			return nil, fmt.Errorf("job map: node %d: %s", n, nodes[n].Why)
		}
	}
	if noOver {
		count := map[int]int{}
		for _, n := range m {
			count[n]++
		}
		for _, n := range m {
			if n == Master {
				continue
			}
			if cpus := max(nodes[n].CPUs, 1); count[n] > cpus {
				return nil, fmt.Errorf("NO_OVER: the job map puts %s on node %d, which has %s: refusing to oversubscribe",
					plural(count[n], "process", "processes"), n, plural(cpus, "CPU", "CPUs"))
			}
		}
	}
	return slices.Clone(m), nil
}

// noNodes explains why there is no candidate.
func noNodes(nodes []Node, excluded map[int]bool) error {
	usable, ex := 0, 0
	for _, n := range nodes {
		if n.Usable {
			usable++
			if excluded[n.Num] {
				ex++
			}
		}
	}
	switch {
	case len(nodes) == 0:
		return errors.New("no compute nodes in the cluster")
	case usable == 0:
		return fmt.Errorf("none of the %s is up and usable by you%s", plural(len(nodes), "node", "nodes"), whys(nodes))
	default:
		return fmt.Errorf("every usable node (%d) is excluded", ex)
	}
}

// whys sums up why nodes are not usable, most common first:
// " (3: not up ([up]), 1: not up (down))"; "" when no node says.
func whys(nodes []Node) string {
	count := map[string]int{}
	var order []string
	for _, n := range nodes {
		if n.Why == "" {
			continue
		}
		if count[n.Why] == 0 {
			order = append(order, n.Why)
		}
		count[n.Why]++
	}
	if len(order) == 0 {
		return ""
	}
	slices.SortStableFunc(order, func(a, b string) int { return count[b] - count[a] })
	parts := make([]string, len(order))
	for i, w := range order {
		parts[i] = fmt.Sprintf("%d: %s", count[w], w)
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// Format writes a map as Scyld did: node numbers joined by colons.
func Format(m []int) string {
	s := make([]string, len(m))
	for i, n := range m {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ":")
}

// ParseList reads a node list (a map or an exclude list): node numbers or
// names separated by colons or commas, each item as a node spec reads it
// (5, n5, .5, 1-3, -1, master), order and duplicates kept. count is the
// number of compute nodes. An empty item ("0::1", "0:1:") is an error, not
// skipped: a map's items are its ranks. A list longer than MaxNP is an error.
func ParseList(s string, count int) ([]int, error) {
	if err := checkList(s); err != nil {
		return nil, err
	}
	var out []int
	for _, it := range splitList(s) {
		ns, err := nodespec.Parse(it, counted(count))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		if len(out)+len(ns) > MaxNP {
			return nil, fmt.Errorf("%q: more than %d entries", s, MaxNP)
		}
		out = append(out, ns...)
	}
	return out, nil
}

// checkList checks what ParseList can without the cluster: that s has
// items and none of them is empty.
func checkList(s string) error {
	items := splitList(s)
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("%q: empty node list", s)
	}
	for i, it := range items {
		if strings.TrimSpace(it) == "" {
			return fmt.Errorf("%q: item %d of %d is empty", s, i+1, len(items))
		}
	}
	return nil
}

// splitList splits a list at its colons and commas, keeping empty items.
func splitList(s string) []string {
	return strings.Split(strings.ReplaceAll(s, ",", ":"), ":")
}

// counted is a nodespec.Cluster that knows only the node count: a list's
// items are numbers and names, never classes like allup.
type counted int

func (c counted) Count() int       { return int(c) }
func (c counted) State(int) string { return "" }

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
