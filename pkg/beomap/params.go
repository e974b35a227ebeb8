package beomap

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
)

// Raw are the map parameters as written, before node names are resolved:
// what the environment or the command line said. Empty strings and false
// mean "not given".
type Raw struct {
	NP                                           string
	AllCPUs, AllNodes, AllLocal, NoLocal, NoOver bool
	Exclude, Map                                 string
}

// FromEnv reads the map parameters from the environment (see the package
// doc for the names).
func FromEnv(getenv func(string) string) Raw {
	return Raw{
		NP:       strings.TrimSpace(getenv(EnvNP)),
		AllCPUs:  truthy(getenv(EnvAllCPUs)),
		AllNodes: truthy(getenv(EnvAllNodes)),
		AllLocal: truthy(getenv(EnvAllLocal)),
		NoLocal:  truthy(getenv(EnvNoLocal)),
		NoOver:   truthy(getenv(EnvNoOver)),
		Exclude:  strings.TrimSpace(getenv(EnvExclude)),
		Map:      strings.TrimSpace(getenv(EnvMap)),
	}
}

// truthy reads a boolean variable: true unless empty, 0, no, false or off.
func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "no", "false", "off":
		return false
	}
	return true
}

// Params resolves r against a cluster of count compute nodes.
func (r Raw) Params(count int) (Params, error) {
	p := Params{AllCPUs: r.AllCPUs, AllNodes: r.AllNodes, AllLocal: r.AllLocal, NoLocal: r.NoLocal, NoOver: r.NoOver}
	if r.NP != "" {
		n, err := strconv.Atoi(r.NP)
		if err != nil || n < 1 {
			return p, fmt.Errorf("np %q: want a positive number of processes", r.NP)
		}
		p.NP = n
	}
	var err error
	if r.Exclude != "" {
		if p.Exclude, err = ParseList(r.Exclude, count); err != nil {
			return p, fmt.Errorf("exclude: %w", err)
		}
	}
	if r.Map != "" {
		if p.Map, err = ParseList(r.Map, count); err != nil {
			return p, fmt.Errorf("map: %w", err)
		}
	}
	return p, nil
}

// Flags are the map parameters as options of a command (beomap, beorun,
// mpprun). Register them on a FlagSet with AddFlags, parse, then Merge
// over the environment's.
type Flags struct {
	fs  *flag.FlagSet
	raw Raw
}

// AddFlags registers the map options on fs: --np, --all-cpus (--allcpus),
// --all-nodes, --all-local, --no-local (--nolocal), --no-over, --exclude,
// --map (--beowulf-job-map). Go's flag package takes one or two dashes.
func AddFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	fs.StringVar(&f.raw.NP, "np", "", "number of processes (env NP)")
	for _, name := range []string{"all-cpus", "allcpus"} {
		fs.BoolVar(&f.raw.AllCPUs, name, false, "one process per CPU of every usable up node (env ALL_CPUS)")
	}
	fs.BoolVar(&f.raw.AllNodes, "all-nodes", false, "one process on every usable up node (env ALL_NODES)")
	fs.BoolVar(&f.raw.AllLocal, "all-local", false, "every process on the master (env ALL_LOCAL)")
	for _, name := range []string{"no-local", "nolocal"} {
		fs.BoolVar(&f.raw.NoLocal, name, false, "no process on the master: rank 0 on a node (env NO_LOCAL)")
	}
	fs.BoolVar(&f.raw.NoOver, "no-over", false, "refuse rather than put more processes than CPUs on the nodes (env NO_OVER)")
	fs.StringVar(&f.raw.Exclude, "exclude", "", "never use these nodes, e.g. 0:3 or 0,3 (env EXCLUDE)")
	for _, name := range []string{"map", "beowulf-job-map"} {
		fs.StringVar(&f.raw.Map, name, "", "use this job map, e.g. -1:0:0:1 (env BEOWULF_JOB_MAP)")
	}
	return f
}

// Merge returns env overridden by the options given on the command line.
// An option that chooses how many processes and where (--np, --all-cpus,
// --all-nodes, --all-local, --map) replaces every such variable (but
// --all-local keeps NP's count); the
// others (--no-local, --no-over, --exclude) replace their own. Options
// that contradict each other are an error.
func (f *Flags) Merge(env Raw) (Raw, error) {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[canonical(fl.Name)] = true })
	if err := conflicts(set); err != nil {
		return env, err
	}
	out := env
	if set["np"] || set["all-cpus"] || set["all-nodes"] || set["all-local"] || set["map"] {
		np := f.raw.NP
		if set["all-local"] && !set["np"] {
			np = env.NP // --all-local says where, NP still says how many
		}
		out.NP, out.AllCPUs, out.AllNodes, out.AllLocal, out.Map = np, f.raw.AllCPUs, f.raw.AllNodes, f.raw.AllLocal, f.raw.Map
	}
	if set["no-local"] {
		out.NoLocal = f.raw.NoLocal
	}
	if set["no-over"] {
		out.NoOver = f.raw.NoOver
	}
	if set["exclude"] {
		out.Exclude = f.raw.Exclude
	}
	return out.Normalize(), nil
}

func canonical(name string) string {
	switch name {
	case "allcpus":
		return "all-cpus"
	case "nolocal":
		return "no-local"
	case "beowulf-job-map":
		return "map"
	}
	return name
}

// conflicts rejects option combinations that say two different things.
func conflicts(set map[string]bool) error {
	pairs := [][2]string{
		{"map", "np"}, {"map", "all-cpus"}, {"map", "all-nodes"}, {"map", "all-local"}, {"map", "no-local"}, {"map", "exclude"},
		{"all-cpus", "all-nodes"}, {"all-cpus", "all-local"}, {"all-nodes", "all-local"}, {"all-cpus", "np"}, {"all-nodes", "np"},
		{"all-local", "no-local"},
	}
	for _, p := range pairs {
		if set[p[0]] && set[p[1]] {
			return fmt.Errorf("--%s and --%s exclude each other", p[0], p[1])
		}
	}
	return nil
}

// Normalize settles what a Raw from the environment alone leaves open:
// a map wins over every other way of choosing processes, --all-local over
// --all-cpus over --all-nodes, and those over NP (which still counts the
// processes of --all-local).
func (r Raw) Normalize() Raw {
	switch {
	case r.Map != "":
		r.NP, r.AllCPUs, r.AllNodes, r.AllLocal = "", false, false, false
	case r.AllLocal:
		r.AllCPUs, r.AllNodes = false, false
	case r.AllCPUs:
		r.AllNodes, r.NP = false, ""
	case r.AllNodes:
		r.NP = ""
	}
	return r
}
