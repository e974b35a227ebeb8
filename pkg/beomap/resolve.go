package beomap

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/beo-cluster/beo/pkg/bproc"
)

// ForCaller makes the map r asks for, for the calling user, from the
// master cl talks to and its stats (statsURL "": $BEOSTAT_URL, else the
// default), and returns it with the nodes it was made from. When no stats
// were found it says so on warn (nil: silent).
func ForCaller(ctx context.Context, cl *bproc.Client, r Raw, statsURL string, warn io.Writer) ([]int, []Node, error) {
	ns, haveStats, err := Nodes(ctx, cl, statsURL, Own())
	if err != nil {
		return nil, nil, err
	}
	p, err := r.Params(len(ns))
	if err != nil {
		return nil, nil, err
	}
	m, err := Compute(p, ns)
	if err == nil && !haveStats && warn != nil && p.Map == nil && !p.AllNodes && slices.ContainsFunc(m, func(n int) bool { return n != Master }) {
		fmt.Fprintf(warn, "beomap: %v\n", ErrNoStats)
	}
	return m, ns, err
}
