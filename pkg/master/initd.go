package master

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/nodes"
)

// This file runs /etc/beowulf/init.d for each node after node_up, as
// Scyld's node_up did: every executable regular file of Config.InitD, in
// name order, as `SCRIPT N` with NODE=N (and BEO_NODE_ADDR) in its
// environment, its output appended to LogDir/node.N, each killed (with
// everything it started: it runs in a process group of its own) after
// InitDTimeout. The first that fails — non-zero exit, a signal, the
// timeout — makes the node error, node.N naming the script and why; the
// ones after it do not run. Names starting with '.' are left out
// silently (editor and package-manager leftovers usually are); any other
// entry that is not an executable regular file (a directory, a file
// without an x bit) is skipped and logged once per master. No directory
// means no scripts. While they run the node stays in boot.

// DefaultInitD is where the master looks for the per-node scripts.
const DefaultInitD = "/etc/beowulf/init.d"

// DefaultInitDTimeout bounds one init.d script.
const DefaultInitDTimeout = 5 * time.Minute

// initD remembers the skipped entries already logged.
type initD struct {
	mu     sync.Mutex
	warned map[string]bool
}

// firstWarning reports whether path has not been logged yet, and notes it.
func (d *initD) firstWarning(path string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.warned[path] {
		return false
	}
	if d.warned == nil {
		d.warned = map[string]bool{}
	}
	d.warned[path] = true
	return true
}

// afterNodeUp runs the init.d scripts for s's node, then marks it up, or
// error when one fails. A script still running when the session ends is
// killed.
func (m *Master) afterNodeUp(ctx context.Context, s *session) {
	cfg := m.config()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := m.runInitD(ctx, cfg, s); err != nil {
		m.log.Warn("init.d failed", "node", s.node, "err", err)
		m.nodeLog(s.node, "init.d: %v", err)
		m.setStateIfCurrent(s, nodes.Error)
		return
	}
	m.setStateIfCurrent(s, nodes.Up)
}

// runInitD runs cfg.InitD's scripts for s's node in name order and
// returns the first failure, naming the script.
func (m *Master) runInitD(ctx context.Context, cfg Config, s *session) error {
	if cfg.InitD == "" {
		return nil
	}
	scripts, skipped, err := initScripts(cfg.InitD)
	if err != nil {
		return err
	}
	for _, p := range skipped {
		if m.initd.firstWarning(p) {
			m.log.Warn("init.d: not an executable regular file; skipped", "file", p)
		}
	}
	timeout := cfg.InitDTimeout
	if timeout <= 0 {
		timeout = DefaultInitDTimeout
	}
	var out *os.File
	if cfg.LogDir != "" {
		f, err := os.OpenFile(filepath.Join(cfg.LogDir, fmt.Sprintf("node.%d", s.node)), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			m.log.Warn("node log", "node", s.node, "err", err)
		} else {
			out = f
			defer f.Close()
		}
	}
	env := append(os.Environ(), "NODE="+strconv.Itoa(s.node), "BEO_NODE_ADDR="+s.addr.String())
	for _, p := range scripts {
		m.nodeLog(s.node, "running %s %d", p, s.node)
		if err := runScript(ctx, p, s.node, env, out, timeout); err != nil {
			return fmt.Errorf("%s failed: %w", filepath.Base(p), err)
		}
	}
	if len(scripts) > 0 {
		m.nodeLog(s.node, "init.d done (%d scripts)", len(scripts))
	}
	return nil
}

// initScripts lists dir's executable regular files (symbolic links
// followed) in name order, and the other entries it skips (dot files
// left out). A missing dir has none.
func initScripts(dir string) (scripts, skipped []string, err error) {
	ents, err := os.ReadDir(dir) // sorted by name
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			skipped = append(skipped, p)
			continue
		}
		scripts = append(scripts, p)
	}
	return scripts, skipped, nil
}

// runScript runs `path n` with env and its output to out (nil: discarded)
// in a process group of its own, killed whole after timeout or when ctx
// ends.
func runScript(ctx context.Context, path string, n int, env []string, out *os.File, timeout time.Duration) error {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, path, strconv.Itoa(n))
	cmd.Env = env
	if out != nil {
		cmd.Stdout, cmd.Stderr = out, out
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	switch {
	case err == nil:
		return nil
	case errors.Is(tctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("still running after %v: killed", timeout)
	case ctx.Err() != nil:
		return fmt.Errorf("killed: %w", ctx.Err())
	}
	return err
}
