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

	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/wire"
)

var errNotRoot = errors.New("permission denied: only root may change nodes")

// control carries out bpctl: for each node in order, the actions in the
// order bpctl documents (state, power, mode, owner, group, reconnect).
func (m *Master) control(ctx context.Context, who caller, c wire.Control) error {
	if who.cred.UID != 0 {
		return errNotRoot
	}
	for _, n := range c.Nodes {
		if _, ok := m.table.Get(n); !ok {
			return fmt.Errorf("node %d: no such node", n)
		}
		switch c.State {
		case "reboot", "halt", "pwroff": // a state the node must act on
			if err := m.power(n, c.State); err != nil {
				return err
			}
		case "":
		default:
			st, err := nodes.ParseState(c.State)
			if err != nil {
				return fmt.Errorf("node %d: %w", n, err)
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
		return fmt.Errorf("node %d: unknown power action %q", n, action)
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
		return fmt.Errorf("node %d: %s: %w", n, action, err)
	}
	if r.Err != "" {
		return errors.New(r.Err)
	}
	m.nodeLog(n, "%s requested", action)
	return nil
}

// file relays a bpcp put or get between a client and a node. The node does
// the work as the caller; the master only checks the caller may use it.
func (m *Master) file(who caller, cl net.Conn, op wire.Op, f wire.File) {
	if err := m.mayUse(who, f.Node); err != nil {
		wire.Write(cl, wire.Result{Err: err.Error()})
		return
	}
	s, err := m.session(f.Node)
	if err != nil {
		wire.Write(cl, wire.Result{Err: err.Error()})
		return
	}
	f.Cred = who.wire()
	nd, err := s.open(wire.Header{Op: op, File: &f})
	if err != nil {
		wire.Write(cl, wire.Result{Err: err.Error()})
		return
	}
	defer nd.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(nd, cl); nd.Close() }()
	go func() { defer wg.Done(); io.Copy(cl, nd); cl.Close() }()
	wg.Wait()
}

// lib edits the prestaged library list (root only) and returns it.
func (m *Master) lib(who caller, l wire.Lib) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(l.Add)+len(l.Delete) == 0 {
		return slices.Clone(m.libs), nil
	}
	if who.cred.UID != 0 {
		return slices.Clone(m.libs), errors.New("permission denied: only root may change the library list")
	}
	libs := slices.Clone(m.libs)
	for _, p := range l.Add {
		if !filepath.IsAbs(p) {
			return slices.Clone(m.libs), fmt.Errorf("%s: not an absolute path", p)
		}
		if !slices.Contains(libs, p) {
			libs = append(libs, p)
		}
	}
	for _, p := range l.Delete {
		i := slices.Index(libs, p)
		if i < 0 {
			return slices.Clone(m.libs), fmt.Errorf("%s: not in the library list", p)
		}
		libs = slices.Delete(libs, i, i+1)
	}
	if f := m.cfg.LibFile; f != "" {
		if err := writeFileAtomic(f, []byte(strings.Join(libs, "\n")+"\n")); err != nil {
			return slices.Clone(m.libs), err
		}
	}
	m.libs = libs
	return slices.Clone(libs), nil
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
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
