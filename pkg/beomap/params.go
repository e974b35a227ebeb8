package beomap

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
)

// MaxNP is the most processes a job may have: a bigger NP (or a longer
// map) is refused before anything is allocated for it.
const MaxNP = 1 << 20

// Raw are the map parameters as written, before node names are resolved:
// what the environment or the command line said. Empty strings and false
// mean "not given".
type Raw struct {
	NP                                           string
	AllCPUs, AllNodes, AllLocal, NoLocal, NoOver bool
	Exclude, Map                                 string
}

// FromEnv reads the map parameters from the environment (see the package
// doc for the names), unchecked: Env and Flags.Merge check them.
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

// Env returns the map parameters of the environment alone, checked as
// Flags.Merge checks them: what a program placing its own processes uses.
func Env(getenv func(string) string) (Raw, error) {
	return merge(FromEnv(getenv), Raw{}, nil)
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
		n, err := parseNP(r.NP)
		if err != nil {
			return p, fmt.Errorf("np %w", err)
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

// parseNP reads a number of processes: 1 to MaxNP.
func parseNP(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxNP {
		return 0, fmt.Errorf("%q: want a number of processes from 1 to %d", s, MaxNP)
	}
	return n, nil
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
	fs.StringVar(&f.raw.NP, "np", "", fmt.Sprintf("number of processes, 1 to %d (env NP)", MaxNP))
	for _, name := range []string{"all-cpus", "allcpus"} {
		fs.BoolVar(&f.raw.AllCPUs, name, false, "one process per CPU of every usable up node (env ALL_CPUS)")
	}
	fs.BoolVar(&f.raw.AllNodes, "all-nodes", false, "one process on every usable up node (env ALL_NODES)")
	fs.BoolVar(&f.raw.AllLocal, "all-local", false, "every process on the master (env ALL_LOCAL)")
	for _, name := range []string{"no-local", "nolocal"} {
		fs.BoolVar(&f.raw.NoLocal, name, false, "no process on the master: rank 0 on a node (env NO_LOCAL)")
	}
	fs.BoolVar(&f.raw.NoOver, "no-over", false, "refuse rather than put more processes than CPUs on a node (env NO_OVER)")
	fs.StringVar(&f.raw.Exclude, "exclude", "", "never use these nodes, e.g. 0:3 or 0,3; \"\" none (env EXCLUDE)")
	for _, name := range []string{"map", "beowulf-job-map"} {
		fs.StringVar(&f.raw.Map, name, "", "use this job map, e.g. -1:0:0:1 (env BEOWULF_JOB_MAP)")
	}
	return f
}

// Merge returns the parameters the options and env (FromEnv's) say
// together, checked, by the rule of the package doc: an option replaces
// its own variable and every variable that contradicts it; two options
// that contradict each other are an error, and so are two variables left
// that do. A bad value (an NP that is no number from 1 to MaxNP, an empty
// entry in a list, an empty --map) is an error naming the option or the
// variable it came from. Every error of Merge is the caller's usage error.
func (f *Flags) Merge(env Raw) (Raw, error) {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[canonical(fl.Name)] = true })
	return merge(env, f.raw, set)
}

// envName is the variable of the parameter whose option is name.
func envName(name string) string {
	switch name {
	case "np":
		return EnvNP
	case "all-cpus":
		return EnvAllCPUs
	case "all-nodes":
		return EnvAllNodes
	case "all-local":
		return EnvAllLocal
	case "no-local":
		return EnvNoLocal
	case "no-over":
		return EnvNoOver
	case "exclude":
		return EnvExclude
	case "map":
		return EnvMap
	}
	return name
}

// contradict reports whether parameters a and b say different things, so
// that both may not be given (the package doc's table).
func contradict(a, b string) bool {
	for _, p := range [...][2]string{
		{"map", "np"}, {"map", "all-cpus"}, {"map", "all-nodes"}, {"map", "all-local"}, {"map", "no-local"}, {"map", "exclude"},
		{"all-cpus", "all-nodes"}, {"all-cpus", "all-local"}, {"all-cpus", "np"},
		{"all-nodes", "all-local"}, {"all-nodes", "np"},
		{"all-local", "no-local"}, {"all-local", "exclude"},
	} {
		if p == [2]string{a, b} || p == [2]string{b, a} {
			return true
		}
	}
	return false
}

// checkedAgainstMap reports whether a and b are the map and a parameter
// that only narrows where processes may go (EXCLUDE, NO_LOCAL): given
// both as variables — an EXCLUDE kept in a profile, a map set for one
// run — the map is checked against it (Compute) rather than refused:
// only a map that puts a process where the other says none may go is an
// error.
func checkedAgainstMap(a, b string) bool {
	for _, p := range [...][2]string{{"map", "exclude"}, {"map", "no-local"}} {
		if p == [2]string{a, b} || p == [2]string{b, a} {
			return true
		}
	}
	return false
}

// field returns where r keeps parameter name: a string or a bool (a
// name that is no parameter: neither, and given and copyParam ignore it).
func (r *Raw) field(name string) (*string, *bool) {
	switch name {
	case "np":
		return &r.NP, nil
	case "all-cpus":
		return nil, &r.AllCPUs
	case "all-nodes":
		return nil, &r.AllNodes
	case "all-local":
		return nil, &r.AllLocal
	case "no-local":
		return nil, &r.NoLocal
	case "no-over":
		return nil, &r.NoOver
	case "exclude":
		return &r.Exclude, nil
	case "map":
		return &r.Map, nil
	}
	return nil, nil
}

// given reports whether r gives parameter name: true, or a value.
func (r *Raw) given(name string) bool {
	s, b := r.field(name)
	return (s != nil && *s != "") || (b != nil && *b)
}

// copyParam sets parameter name of dst to src's.
func copyParam(dst, src *Raw, name string) {
	ds, db := dst.field(name)
	ss, sb := src.field(name)
	if ds != nil {
		*ds = *ss
	}
	if db != nil {
		*db = *sb
	}
}

// merge does Merge: set holds the options given (by canonical name) and
// opt their values.
func merge(env, opt Raw, set map[string]bool) (Raw, error) {
	// The parameters by option name, in the order errors name them.
	names := []string{"np", "all-cpus", "all-nodes", "all-local", "no-local", "no-over", "exclude", "map"}
	// An option said something when it is true or has a value (an empty
	// --np or --map is refused below); --no-local=false and --exclude ''
	// only replace their variable.
	said := func(name string) bool {
		return set[name] && (opt.given(name) || name == "np" || name == "map")
	}
	for i, a := range names {
		for _, b := range names[i+1:] {
			if said(a) && said(b) && contradict(a, b) {
				return Raw{}, fmt.Errorf("--%s and --%s exclude each other", a, b)
			}
		}
	}
	if set["np"] {
		if _, err := parseNP(opt.NP); err != nil {
			return Raw{}, fmt.Errorf("--np %w", err)
		}
	}
	if set["map"] && opt.Map == "" {
		return Raw{}, fmt.Errorf("--map: empty job map")
	}
	for _, name := range []string{"exclude", "map"} {
		if s, _ := opt.field(name); set[name] && *s != "" {
			if err := checkList(*s); err != nil {
				return Raw{}, fmt.Errorf("--%s %w", name, err)
			}
		}
	}
	var out Raw
	var fromEnv []string // the variables kept, in names order
	for _, name := range names {
		if set[name] {
			copyParam(&out, &opt, name)
			continue
		}
		if !env.given(name) {
			continue
		}
		overridden := false
		for _, o := range names {
			if said(o) && contradict(o, name) {
				overridden = true
			}
		}
		if !overridden {
			copyParam(&out, &env, name)
			fromEnv = append(fromEnv, name)
		}
	}
	for i, a := range fromEnv {
		for _, b := range fromEnv[i+1:] {
			if contradict(a, b) && !checkedAgainstMap(a, b) {
				return Raw{}, fmt.Errorf("variables %s and %s exclude each other: unset one, or give an option", envName(a), envName(b))
			}
		}
	}
	for _, name := range fromEnv {
		var err error
		switch name {
		case "np":
			_, err = parseNP(out.NP)
		case "exclude", "map":
			s, _ := out.field(name)
			err = checkList(*s)
		}
		if err != nil {
			return Raw{}, fmt.Errorf("%s=%w", envName(name), err)
		}
	}
	return out, nil
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
