package head

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/beo-cluster/beo/pkg/beomap"
	"github.com/beo-cluster/beo/pkg/mpi"
	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/stats"
	"github.com/beo-cluster/beo/pkg/wire"
)

// mpiRefresh is how often the default hostfiles follow the nodes' load.
const mpiRefresh = 2 * time.Second

// anyone is a caller with no claim on any node: what the shared default
// hostfiles are made for (nodes whose mode lets others run).
var anyone = wire.Cred{UID: 1<<32 - 2, GID: 1<<32 - 2}

// mpiFiles keeps the MPI launchers' runtime directory (pkg/mpi) next to
// the client socket — the beorsh link, the settings, the default
// hostfiles, rewritten as the node table and the load change — and with
// Options.MPI makes its settings the installed MPIs' system-wide
// defaults until the head closes. Without Options.MPI, a beo block for
// this directory left in those files (by a master that crashed) is
// removed.
func (h *Head) mpiFiles(rcv *stats.Receiver) error {
	o := h.o
	dir := o.MPIDir
	if dir == "" {
		dir = filepath.Join(filepath.Dir(o.Socket), "mpi")
	}
	exe := o.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return err
		}
	}
	f := &mpi.Files{Dir: dir, Exe: exe, MTL: o.MPIMTL}
	if o.Boot != nil {
		f.Iface = o.Boot.Iface
	}
	if err := f.Setup(); err != nil {
		o.Log.Warn("MPI launchers' directory not written: mpirun cannot use the cluster", "dir", dir, "err", err)
		return nil
	}
	h.closers = append(h.closers, closerFunc(f.Remove))
	if o.MPISystem != nil {
		if o.MPI {
			changed, err := mpi.Install(f, *o.MPISystem)
			o.Log.Info("MPI system-wide defaults installed", "files", changed, "err", err)
			sys := *o.MPISystem
			h.closers = append(h.closers, closerFunc(func() error {
				changed, err := mpi.Remove(f, sys)
				o.Log.Info("MPI system-wide defaults removed", "files", changed, "err", err)
				return err
			}))
		} else if changed, err := mpi.Remove(f, *o.MPISystem); len(changed) > 0 || err != nil {
			o.Log.Info("MPI system-wide defaults left by an earlier master removed", "files", changed, "err", err)
		}
	}
	t := h.m.Table()
	h.units = append(h.units, Unit{"mpi hostfiles", func(ctx context.Context) error {
		changes := t.Watch(ctx)
		tick := time.NewTicker(mpiRefresh)
		defer tick.Stop()
		for {
			if err := f.Update(mpiNodes(t.All(), rcv)); err != nil {
				o.Log.Warn("MPI default hostfiles", "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-changes:
			case <-tick.C:
			}
		}
	}})
	return nil
}

// mpiNodes is what the default hostfiles are made from: who anyone may
// use, and the load from the nodes' stats (none without recvstats).
func mpiNodes(all []nodes.Node, rcv *stats.Receiver) []beomap.Node {
	out := make([]beomap.Node, 0, len(all))
	for _, n := range all {
		bn := beomap.Node{Num: n.Num, Usable: n.State == nodes.Up && n.CanRun(anyone) == nil}
		if n.Addr.IsValid() {
			bn.Addr = n.Addr.String()
		}
		if rcv != nil {
			if s, ok := rcv.Status(n.Num); ok && !s.Stale {
				bn.CPUs, bn.Load = len(s.Report.Cores), s.Report.Load[0]
			}
		}
		out = append(out, bn)
	}
	return out
}
