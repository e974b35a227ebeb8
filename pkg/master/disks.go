package master

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/localfs"
	"github.com/beo-cluster/beo/pkg/wire"
)

// This file prepares a booting node's local disks, as Scyld's setup_fs
// did in the node's mount step: each line of its fstab on a local
// partition (localfs.Line.Local: a /dev path, ext2/3/4 or swap) is made
// or checked as the config's mkfs and fsck policies say (Config.Disks,
// localfs.Prepare) before the node mounts its lines. The work runs on
// the node through the process space, as root, with the master's own
// mke2fs, e2fsck and mkswap and its own beo binary (the probe), as
// `beofdisk -s` runs it (the same code: pkg/localfs), through an
// in-process client of this master (selfClient): the node is still in
// boot, where only root may run programs.
//
// A failed preparation is a failed mount of that line: a fatal line
// ends the node's mounts (it goes error, node.N naming file:line), a
// nonfatal one is logged and its line left out of the mounts.

// PrepareTimeout bounds the preparation of one local line: the probe and
// an fsck or mkfs of the partition on the node.
const PrepareTimeout = 10 * time.Minute

// prepareDisks prepares the local lines of ms on s's node, in order, and
// returns the lines to mount — ms without the nonfatal local lines whose
// preparation failed — and false when a fatal one failed.
func (m *Master) prepareDisks(ctx context.Context, s *session, cfg Config, ms []wire.Mount) ([]wire.Mount, bool) {
	n := s.node
	var node *localfs.Remote
	defer func() {
		if node != nil {
			node.Client.Close()
		}
	}()
	out := ms[:0:0]
	for _, mt := range ms {
		l := localfs.Line{Device: mt.Source, Dir: mt.Target, Type: mt.Type, Options: mt.Options}
		if !l.Local() {
			out = append(out, mt)
			continue
		}
		where := fmt.Sprintf("%s:%d", mt.File, mt.Line)
		var err error
		if node == nil {
			node, err = m.remote(ctx, n)
		}
		var rep localfs.Report
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, PrepareTimeout)
			rep, err = localfs.Prepare(pctx, node, l, cfg.Disks)
			cancel()
		}
		for _, r := range rep {
			m.nodeLog(n, "%s: %s", where, r)
		}
		switch {
		case err == nil:
			out = append(out, mt)
		case mt.Fatal:
			m.log.Warn("node error: local disk", "node", n, "line", where, "err", err)
			m.nodeLog(n, "%s: %s: %v; node error (the option nonfatal lets a node come up without it)", where, l.Device, err)
			return nil, false
		default:
			m.log.Info("nonfatal local disk failed", "node", n, "line", where, "err", err)
			m.nodeLog(n, "%s: nonfatal: %s: %v; not mounted", where, l.Device, err)
		}
	}
	return out, true
}

// remote is a localfs.Node for node n through selfClient.
func (m *Master) remote(ctx context.Context, n int) (*localfs.Remote, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("the master's own binary: %w", err)
	}
	cl, err := m.selfClient(ctx)
	if err != nil {
		return nil, err
	}
	return &localfs.Remote{Client: cl, Node: n, SelfPath: self}, nil
}

// selfClient is a client of this master as root, over an in-process
// pipe served like any client connection (permissions, closures, the
// node's streams), for work the master itself has done on a node.
// Its processes get no ghosts: nobody on the master waits for them but
// the master.
func (m *Master) selfClient(ctx context.Context) (*bproc.Client, error) {
	c, srv := net.Pipe()
	go m.serveClient(ctx, caller{cred: wire.Cred{}}, srv)
	cl, err := bproc.NewClient(c)
	if err != nil {
		return nil, fmt.Errorf("the master's own client: %w", err)
	}
	cl.NoGhosts()
	return cl, nil
}
