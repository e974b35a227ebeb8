package sim

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/cgroup"
)

// The simulated nodes' jobs groups.
//
// Every bpslave of a simulation shares the host's cgroup tree, so the
// simulation gives each node a jobs group of its own: beo-sim-PID-N
// beside the simulation (a child of its own cgroup), node<n> under it,
// passed to the node's bpslave as -cgroup. When a node's bpslave exits
// — killed, crashed, or a simulated reboot — the simulation kills that
// group at once, as PID 1 does on a real node (pkg/slave orphans.go), so
// no job outlives its node. Stop kills and removes the whole group; a
// group whose simulation died without Stop is removed by the next
// simulation that starts (sweepSims).
//
// Where the simulation may not make groups (no cgroup2 mounted, a user
// without delegation) it says so once and its nodes run jobs without
// cgroups (-cgroup none).

var simSeq atomic.Uint64

// simControllers are passed down to the nodes' jobs where the hierarchy
// allows (pkg/cgroup: the no-internal-process rule).
var simControllers = []string{"cpu", "memory", "pids", "io"}

// makeGroups makes the simulation's group, or returns "" and why not.
func makeGroups(log *slog.Logger) cgroup.Group {
	self, err := cgroup.Self()
	var g cgroup.Group
	if err == nil {
		sweepSims(self, log)
		g, err = self.MakeNew(fmt.Sprintf("beo-sim-%d-%d", os.Getpid(), simSeq.Add(1)))
	}
	if err != nil {
		log.Warn("simulated nodes run jobs without cgroups", "err", err)
		return ""
	}
	self.Enable(simControllers...) // refused unless self is the root or empty: fine
	g.Enable(simControllers...)
	return g
}

// nodeGroup makes node n's jobs group under g; "" without cgroups.
func nodeGroup(g cgroup.Group, n int) (cgroup.Group, error) {
	if g == "" {
		return "", nil
	}
	ng, err := g.Make("node" + strconv.Itoa(n))
	if err != nil {
		return "", err
	}
	ng.Enable(simControllers...)
	return ng, nil
}

// sweepSims removes the groups of simulations whose process is gone.
func sweepSims(self cgroup.Group, log *slog.Logger) {
	kids, err := self.Children()
	if err != nil {
		return
	}
	for _, k := range kids {
		name := filepath.Base(string(k))
		rest, ok := strings.CutPrefix(name, "beo-sim-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue
		}
		if err := k.Remove(2 * time.Second); err != nil {
			log.Warn("stale simulation group", "group", k, "err", err)
		}
	}
}
