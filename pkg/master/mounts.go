package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// DefaultMountTimeout bounds each of a node's mounts when Config names
// no MountTimeout: an NFS server that does not answer costs a booting
// node this long per line, not forever.
const DefaultMountTimeout = 30 * time.Second

// mountSlack is what a mount result may take beyond the mount's own
// bound: the slave's module loading is inside that bound, this is only
// the trip back.
const mountSlack = 5 * time.Second

// mountFS gives node s its file systems (Config.Mounts: the node's fstab
// lines, see pkg/fstab) while it is in boot, before libraries are staged
// and node_up runs, and logs every line's outcome in node.N with its
// file:line. Lines on local partitions are made or checked first, as
// the config's mkfs and fsck policies say (disks.go). It reports false — the node goes error — when the lines
// cannot be had (Mounts' error), a mount without nonfatal failed, or the
// node stopped answering; a failed nonfatal mount is logged and the node
// comes up. A node with no lines gets no OpMount at all.
func (m *Master) mountFS(ctx context.Context, s *session, cfg Config) bool {
	if cfg.Mounts == nil {
		return true
	}
	n := s.node
	ms, notes, err := cfg.Mounts(n, s.addr)
	for _, note := range notes {
		m.nodeLog(n, "%s", note)
	}
	if err != nil {
		m.log.Warn("node error: fstab", "node", n, "err", err)
		m.nodeLog(n, "fstab: %v; node error", err)
		return false
	}
	start := m.clock()
	ms, ok := m.prepareDisks(ctx, s, cfg, ms) // local partitions: mkfs, fsck (disks.go)
	if !ok {
		return false
	}
	if len(ms) == 0 {
		return true
	}
	timeout := cfg.MountTimeout
	if timeout <= 0 {
		timeout = DefaultMountTimeout
	}
	files := UsrEtc(cfg.UsrEtc, ms)
	st, err := s.open(wire.Header{Op: wire.OpMount, Mount: &wire.Mounts{Mounts: ms, Timeout: timeout, Files: files}})
	if err != nil {
		m.nodeLog(n, "mounts: %v; node error", err)
		return false
	}
	defer st.Close()
	for i := range ms {
		var r wire.MountResult
		st.SetReadDeadline(time.Now().Add(timeout + mountSlack))
		err := wire.Read(st, &r)
		if err == nil && r.Index != i {
			err = fmt.Errorf("result for mount %d, want %d", r.Index, i)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the node stopped answering")
			}
			m.log.Warn("node error: mounts", "node", n, "err", err)
			m.nodeLog(n, "mounts: %s:%d and after: %v; node error", ms[i].File, ms[i].Line, err)
			return false
		}
		mt := ms[i]
		where := fmt.Sprintf("%s:%d", mt.File, mt.Line)
		switch {
		case r.Err == "" && r.Already:
			m.nodeLog(n, "%s: %s on %s (%s): mounted already", where, mt.Source, mt.Target, mt.Type)
		case r.Err == "":
			m.nodeLog(n, "%s: mounted %s on %s (%s) in %v", where, mt.Source, mt.Target, mt.Type, r.Took.Round(time.Millisecond))
		case mt.Fatal:
			m.log.Warn("node error: mount failed", "node", n, "line", where, "err", r.Err)
			m.nodeLog(n, "%s: mount failed: %s; node error (the option nonfatal lets a node come up without it)", where, r.Err)
			return false
		default:
			m.log.Info("nonfatal mount failed", "node", n, "line", where, "err", r.Err)
			m.nodeLog(n, "%s: nonfatal mount failed: %s", where, r.Err)
		}
	}
	m.log.Info("node mounts done", "node", n, "count", len(ms), "took", m.clock().Sub(start).Round(time.Millisecond), "etc_files", len(files))
	return true
}

// DefaultUsrEtc is what of the master's /etc goes to a node that
// mirrors the master's /usr (Config.UsrEtc): the /etc entries Debian's
// programs under /usr read at run time. /etc/alternatives holds the
// targets of many links under /usr (mpirun, libblas.so.3, OpenMPI's
// libpsm_infinipath.so.1); /etc/openmpi the system MCA parameters (on
// Debian, exclusions such as mtl = ^ofi: without them a node's ranks
// pick another transport than the master's and MPI_Init fails);
// /etc/ucx and /etc/libibverbs.d the UCX and verbs configuration.
var DefaultUsrEtc = []string{"/etc/alternatives", "/etc/openmpi", "/etc/ucx", "/etc/libibverbs.d"}

// Bounds on what UsrEtc sends: a file larger than maxEtcFile is left
// out, and so is everything after maxEtcTotal bytes of content.
const (
	maxEtcFile  = 256 << 10
	maxEtcTotal = 2 << 20
)

// UsrEtc returns copies of the master's paths (files, symbolic links,
// and directories walked whole) for a node whose mounts ms mirror the
// master's /usr, at the same paths; nil when none does. A path that is
// missing is skipped. Files that cannot be read or are too large are
// left out (see maxEtcFile).
func UsrEtc(paths []string, ms []wire.Mount) []wire.EtcFile {
	if len(paths) == 0 || !slices.ContainsFunc(ms, func(m wire.Mount) bool {
		return m.Mirror && (m.Target == "/usr" || m.Target == "/")
	}) {
		return nil
	}
	var out []wire.EtcFile
	total := 0
	for _, root := range paths {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			switch {
			case d.Type()&fs.ModeSymlink != 0:
				if t, err := os.Readlink(p); err == nil {
					out = append(out, wire.EtcFile{Path: p, Link: t})
				}
			case d.Type().IsRegular():
				fi, err := d.Info()
				if err != nil || fi.Size() > maxEtcFile || total+int(fi.Size()) > maxEtcTotal {
					return nil
				}
				b, err := os.ReadFile(p)
				if err != nil {
					return nil
				}
				total += len(b)
				out = append(out, wire.EtcFile{Path: p, Data: b, Mode: fi.Mode().Perm()})
			}
			return nil
		})
	}
	return out
}
