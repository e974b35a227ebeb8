package beomap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/wire"
)

// StatsTimeout bounds how long Nodes waits for the stats.
const StatsTimeout = 3 * time.Second

// Own returns this process's identity as the master checks it.
func Own() wire.Cred {
	c := wire.Cred{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	if gs, err := os.Getgroups(); err == nil {
		for _, g := range gs {
			c.Groups = append(c.Groups, uint32(g))
		}
	}
	return c
}

// Usable reports whether who may start a job's process on node n: it must
// be up (not [up], not unavailable: an explicit bpsh by root may use
// those, a job map never does) and pass the node's execute check.
func Usable(n bproc.NodeInfo, who wire.Cred) (bool, string) {
	if n.State != nodes.Up.String() {
		return false, "not up (" + n.State + ")"
	}
	nd := nodes.Node{Num: n.Node, State: nodes.Up, Owner: n.UID, Group: n.GID, Mode: os.FileMode(n.Mode)}
	if err := nd.CanRun(who); err != nil {
		// CanRun says "node N: why"; the caller names the node.
		return false, strings.TrimPrefix(err.Error(), fmt.Sprintf("node %d: ", n.Node))
	}
	return true, ""
}

// FromStatus turns the master's node table and the stats snapshot (nil:
// none) into the mapper's nodes, for who. stats reports whether any node
// had stats.
func FromStatus(st bproc.Status, snap *dashboard.Snapshot, who wire.Cred) (out []Node, stats bool) {
	out = make([]Node, len(st.Nodes))
	for i := range out {
		out[i] = Node{Num: i, Why: "no such node"}
	}
	for _, n := range st.Nodes {
		if n.Node < 0 || n.Node >= len(out) {
			continue
		}
		ok, why := Usable(n, who)
		out[n.Node] = Node{Num: n.Node, Usable: ok, Why: why, Addr: n.Addr}
	}
	if snap != nil {
		for _, n := range snap.Nodes {
			if n.Stats == nil || n.Node < 0 || n.Node >= len(out) {
				continue
			}
			stats = true
			out[n.Node].CPUs = len(n.Stats.Report.Cores)
			out[n.Node].Load = n.Stats.Report.Load[0]
		}
	}
	return out, stats
}

// Nodes reads the node table from the master and the stats from its
// dashboard at statsURL ("": $BEOSTAT_URL, else the default). Without
// stats every node counts as one idle CPU (stats is false then).
func Nodes(ctx context.Context, cl *bproc.Client, statsURL string, who wire.Cred) (out []Node, stats bool, err error) {
	if statsURL == "" {
		statsURL = os.Getenv(dashboard.URLEnv)
	}
	if statsURL == "" {
		statsURL = dashboard.DefaultURL
	}
	// The stats while the master answers: neither waits for the other.
	sctx, cancel := context.WithTimeout(ctx, StatsTimeout)
	defer cancel()
	fetched := make(chan *dashboard.Snapshot, 1)
	go func() {
		s, err := dashboard.Fetch(sctx, nil, statsURL, "")
		if err != nil {
			fetched <- nil
			return
		}
		fetched <- &s
	}()
	st, err := cl.Status(ctx)
	if err != nil {
		return nil, false, err
	}
	out, stats = FromStatus(st, <-fetched, who)
	return out, stats, nil
}

// Get returns the job map the environment asks for (NP, NO_LOCAL, …; see
// the package doc), as beomap would print it now: the call a program makes
// to place its own processes (`NP=5 mpi-mandel`). getenv nil means
// os.Getenv.
func Get(ctx context.Context, getenv func(string) string) ([]int, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	r, err := Env(getenv)
	if err != nil {
		return nil, err
	}
	cl, err := bproc.Dial(ctx, "")
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ns, _, err := Nodes(ctx, cl, getenv(dashboard.URLEnv), Own())
	if err != nil {
		return nil, err
	}
	p, err := r.Params(len(ns))
	if err != nil {
		return nil, err
	}
	return Compute(p, ns)
}

// ErrNoStats is what a caller may print when Nodes found no stats.
var ErrNoStats = errors.New("no node stats (is recvstats running?): every node counts as one idle CPU")
