package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/beo-cluster/beo/pkg/atomicfile"
	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/wire"
)

var errNotRoot = wire.Errorf(wire.CodePermission, "permission denied: only root may change nodes")

// control carries out bpctl: for each node in order, the actions in the
// order bpctl documents (state, power, mode, owner, group, reconnect).
func (m *Master) control(ctx context.Context, who caller, c wire.Control) error {
	if who.cred.UID != 0 && who.cred.UID != m.config().Admin {
		return errNotRoot
	}
	for _, n := range c.Nodes { // every node first: a refusal changes nothing
		nd, ok := m.table.Get(n)
		if !ok {
			return wire.NodeErrorf(n, wire.CodeNotFound, "no such node")
		}
		if err := nd.ControlledHere(); err != nil {
			return err
		}
	}
	for _, n := range c.Nodes {
		switch c.State {
		case "reboot", "halt", "pwroff": // a state the node must act on
			if err := m.power(n, c.State); err != nil {
				return err
			}
		case "":
		default:
			st, err := nodes.ParseState(c.State)
			if err != nil {
				return wire.NodeErrorf(n, wire.CodeInvalid, "%w", err)
			}
			if err := m.table.SetState(nodes.Admin, n, st); err != nil {
				return err
			}
		}
		if c.Power != "" {
			if err := m.power(n, c.Power); err != nil {
				return err
			}
		}
		if c.Mode != nil {
			if err := m.table.SetMode(nodes.Admin, n, os.FileMode(*c.Mode)); err != nil {
				return err
			}
		}
		if c.UID != nil {
			if err := m.table.SetOwner(nodes.Admin, n, *c.UID); err != nil {
				return err
			}
		}
		if c.GID != nil {
			if err := m.table.SetGroup(nodes.Admin, n, *c.GID); err != nil {
				return err
			}
		}
		if c.ForgetKey {
			if err := m.ForgetKey(n); err != nil {
				return err
			}
		}
		if c.Reconnect {
			s, err := m.session(n)
			if err != nil {
				return err
			}
			s.close("reconnect requested")
		}
	}
	return nil
}

// power asks node n's slave to reboot, halt or power off.
func (m *Master) power(n int, action string) error {
	var st nodes.State
	switch action {
	case "reboot":
		st = nodes.Reboot
	case "halt":
		st = nodes.Halt
	case "pwroff":
		st = nodes.Pwroff
	default:
		return wire.NodeErrorf(n, wire.CodeInvalid, "unknown power action %q", action)
	}
	s, err := m.session(n)
	if err != nil {
		return err
	}
	if err := m.table.SetState(nodes.Admin, n, st); err != nil {
		return err
	}
	c, err := s.open(wire.Header{Op: wire.OpControl, Control: &wire.Control{Power: action}})
	if err != nil {
		return err
	}
	defer c.Close()
	var r wire.Result
	if err := wire.Read(c, &r); err != nil {
		return wire.NodeErrorf(n, wire.CodeNodeDown, "%s: %w", action, err)
	}
	if err := r.Failure(); err != nil {
		return err
	}
	m.nodeLog(n, "%s requested", action)
	return nil
}

// file relays a bpcp put or get between a client and a node. The node does
// the work as the caller; the master only checks the caller may use it.
// A put that lists Sources is packed here instead, the master reading the
// files as the caller (putSources): the same permission checks, one
// process hop fewer for the bytes.
func (m *Master) file(ctx context.Context, who caller, cl net.Conn, op wire.Op, f wire.File) {
	if err := m.mayUse(who, f.Node); err != nil {
		wire.Write(cl, wire.Fail(err))
		return
	}
	if len(f.Sources) > 0 {
		err := errors.New("sources are for put only")
		if op == wire.OpPut {
			err = m.putSources(ctx, who, cl, f)
		}
		wire.Write(cl, result(err))
		return
	}
	s, err := m.session(f.Node)
	if err != nil {
		wire.Write(cl, wire.Fail(err))
		return
	}
	f.Cred = who.cred
	nd, err := s.open(wire.Header{Op: op, File: &f})
	if err != nil {
		wire.Write(cl, wire.Fail(err))
		return
	}
	defer nd.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.CopyBuffer(nd, cl, make([]byte, bulkBuffer)); nd.Close() }()
	go func() { defer wg.Done(); io.CopyBuffer(cl, nd, make([]byte, bulkBuffer)); cl.Close() }()
	wg.Wait()
}

// lib edits the prestaged library list (root only) and returns it.
func (m *Master) lib(who caller, l wire.Lib) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(l.Add)+len(l.Delete) == 0 {
		return slices.Clone(m.libs), nil
	}
	if who.cred.UID != 0 && who.cred.UID != m.cfg.Admin { // m.mu is held
		return slices.Clone(m.libs), wire.Errorf(wire.CodePermission, "permission denied: only root may change the library list")
	}
	libs := slices.Clone(m.libs)
	for _, p := range l.Add {
		if !filepath.IsAbs(p) {
			return slices.Clone(m.libs), wire.Errorf(wire.CodeInvalid, "%s: not an absolute path", p)
		}
		if fi, err := os.Stat(p); err != nil {
			return slices.Clone(m.libs), err
		} else if !fi.Mode().IsRegular() {
			return slices.Clone(m.libs), wire.Errorf(wire.CodeInvalid, "%s: not a regular file", p)
		}
		if !slices.Contains(libs, p) {
			libs = append(libs, p)
		}
	}
	for _, p := range l.Delete {
		i := slices.Index(libs, p)
		if i < 0 {
			return slices.Clone(m.libs), wire.Errorf(wire.CodeNotFound, "%s: not in the library list", p)
		}
		libs = slices.Delete(libs, i, i+1)
	}
	if f := m.cfg.LibFile; f != "" {
		if err := writeFileAtomic(f, []byte(strings.Join(libs, "\n")+"\n")); err != nil {
			return slices.Clone(m.libs), err
		}
	}
	m.libs = libs
	if len(l.Add) > 0 { // every connected node gets the new files now
		for _, s := range m.sessions {
			go m.stageLibs(s)
		}
	}
	return slices.Clone(libs), nil
}

// stageLibs sends node s every prestaged library it lacks (OpStage). A
// failure is logged and otherwise harmless: programs still bring their
// whole closure on demand.
func (m *Master) stageLibs(s *session) {
	m.mu.Lock()
	paths := slices.Clone(m.libs)
	m.mu.Unlock()
	if len(paths) == 0 {
		return
	}
	err := func() error {
		refs, reals, err := m.libRefs(paths)
		if err != nil {
			return err
		}
		st, err := s.open(wire.Header{Op: wire.OpStage, Stage: &wire.Stage{Files: refs}})
		if err != nil {
			return err
		}
		defer st.Close()
		sent, err := m.sendFiles(s, st, reals)
		if err != nil {
			return err
		}
		var r wire.Result
		if err := wire.Read(st, &r); err != nil {
			return fmt.Errorf("stage: %w", err)
		}
		if err := r.Failure(); err != nil {
			return err
		}
		m.nodeLog(s.node, "staged %d libraries (%d bytes sent)", len(paths), sent)
		return nil
	}()
	if err != nil {
		m.log.Warn("staging libraries failed", "node", s.node, "err", err)
		m.nodeLog(s.node, "staging libraries failed: %v", err)
	}
}

// libRefs describes the listed libraries as closure entries: each file
// under its real path (and under the path its chain of symlinks ends at,
// when a directory symlink makes that differ), and the symlinks of the
// chain as links.
func (m *Master) libRefs(paths []string) ([]wire.FileRef, map[string]string, error) {
	var refs []wire.FileRef
	reals := map[string]string{}
	for _, p := range paths {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, nil, err
		}
		fi, err := os.Stat(real)
		if err != nil {
			return nil, nil, err
		}
		h, err := m.hasher.Hash(real)
		if err != nil {
			return nil, nil, err
		}
		reals[h] = real
		file := wire.FileRef{Path: real, Hash: h, Size: fi.Size(), Mode: uint32(fi.Mode().Perm())}
		refs = append(refs, file)
		cur := p
		for range 40 { // the kernel's own bound on a symlink chain
			li, err := os.Lstat(cur)
			if err != nil {
				return nil, nil, err
			}
			if li.Mode()&os.ModeSymlink == 0 {
				break
			}
			t, err := os.Readlink(cur)
			if err != nil {
				return nil, nil, err
			}
			refs = append(refs, wire.FileRef{Path: cur, Target: t})
			if !filepath.IsAbs(t) {
				t = filepath.Join(filepath.Dir(cur), t)
			}
			cur = t
		}
		if cur != real {
			file.Path = cur
			refs = append(refs, file)
		}
	}
	return refs, reals, nil
}
func (m *Master) loadLibs() error {
	f := m.config().LibFile
	if f == "" {
		return nil
	}
	b, err := os.ReadFile(f)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("library list: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			m.libs = append(m.libs, l)
		}
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	return atomicfile.WriteFile(path, data, 0o644)
}

// reload runs the head node's reload for `beo master reload`.
func (m *Master) reload(who caller) error {
	cfg := m.config()
	if who.cred.UID != 0 && who.cred.UID != cfg.Admin {
		return wire.Errorf(wire.CodePermission, "permission denied: only root may reload the master's config")
	}
	if cfg.Reload == nil {
		return errors.New("this master has no config to reload")
	}
	return cfg.Reload()
}
