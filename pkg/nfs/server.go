package nfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/atomicfile"
)

// Kind names an NFS server beo can use.
type Kind string

// The kinds.
const (
	Auto    Kind = "auto"    // Detect chooses
	Kernel  Kind = "kernel"  // the kernel's nfsd, through exportfs
	Ganesha Kind = "ganesha" // nfs-ganesha, started by beo master
	None    Kind = "none"    // no server: NFS lines of the fstab fail
)

// ParseKind reads a -nfs flag value.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case Auto, Kernel, Ganesha, None:
		return k, nil
	}
	return "", fmt.Errorf("NFS server %q: want auto, kernel, ganesha or none", s)
}

// Detect chooses the server for Auto: the kernel's where the head node's
// kernel has nfsd (proc/fs/nfsd exists, or proc/filesystems lists nfsd)
// and exportfs is installed; else nfs-ganesha where ganesha.nfsd is
// installed; else None. why says what was found.
func Detect(proc string, look func(string) (string, error)) (k Kind, why string) {
	nfsd := false
	if _, err := os.Stat(filepath.Join(proc, "fs/nfsd")); err == nil {
		nfsd = true
	} else if b, err := os.ReadFile(filepath.Join(proc, "filesystems")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[len(f)-1] == "nfsd" {
				nfsd = true
			}
		}
	}
	_, exportfs := look("exportfs")
	_, ganesha := look("ganesha.nfsd")
	switch {
	case nfsd && exportfs == nil:
		return Kernel, "the kernel has nfsd and exportfs is installed"
	case ganesha == nil && nfsd:
		return Ganesha, "the kernel has nfsd but exportfs is not installed (Debian nfs-kernel-server); ganesha.nfsd is"
	case ganesha == nil:
		return Ganesha, "the kernel has no nfsd; ganesha.nfsd is installed"
	case nfsd:
		return None, "the kernel has nfsd, but neither exportfs (Debian nfs-kernel-server) nor ganesha.nfsd (Debian nfs-ganesha nfs-ganesha-vfs) is installed"
	}
	return None, "the kernel has no nfsd and ganesha.nfsd is not installed (Debian nfs-ganesha nfs-ganesha-vfs)"
}

// server is one kind of NFS server, kept serving a set of exports.
type server interface {
	// apply makes the server serve exports (a reload when it runs).
	apply(exports []Export) error
	// run keeps the server up until ctx ends, then stops it (or
	// withdraws beo's exports).
	run(ctx context.Context)
	// status says whether the server serves now; why when not.
	status() (ok bool, why string)
	// wait waits until the server serves, at most until ctx ends.
	wait(ctx context.Context) bool
}

// kernelServer exports through the kernel's nfsd: an exports(5) file of
// beo's own (in /etc/exports.d: other exports are left alone), written
// atomically and applied with exportfs -ra; removed (and applied) when
// beo master stops. nfs-kernel-server's own daemons (rpc.nfsd, mountd)
// must run: beo does not start them.
type kernelServer struct {
	file, proc string
	log        *slog.Logger
	mu         sync.Mutex
	err        string
}

func (k *kernelServer) apply(exports []Export) error {
	var err error
	if len(exports) == 0 {
		err = os.Remove(k.file)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
	} else {
		err = atomicfile.WriteFile(k.file, ExportsFile(exports), 0o644)
	}
	if err == nil {
		err = k.exportfs()
	}
	k.mu.Lock()
	k.err = ""
	if err != nil {
		k.err = err.Error()
	}
	k.mu.Unlock()
	return err
}

func (k *kernelServer) exportfs() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "exportfs", "-ra").CombinedOutput()
	if err != nil {
		return fmt.Errorf("exportfs -ra: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

func (k *kernelServer) run(ctx context.Context) {
	<-ctx.Done()
	if err := os.Remove(k.file); err == nil {
		if err := k.exportfs(); err != nil {
			k.log.Warn("nfs: withdrawing beo's exports", "err", err)
		}
	}
}

func (k *kernelServer) status() (bool, string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != "" {
		return false, k.err
	}
	if b, err := os.ReadFile(filepath.Join(k.proc, "fs/nfsd/threads")); err == nil && strings.TrimSpace(string(b)) == "0" {
		return false, "the kernel's nfsd runs no threads: start nfs-kernel-server"
	}
	return true, ""
}

func (k *kernelServer) wait(context.Context) bool { ok, _ := k.status(); return ok }

// noServer is what runs when no server can.
type noServer struct{ why string }

func (n noServer) apply([]Export) error      { return nil }
func (n noServer) run(ctx context.Context)   { <-ctx.Done() }
func (n noServer) status() (bool, string)    { return false, n.why }
func (n noServer) wait(context.Context) bool { return false }

// ganeshaServer runs nfs-ganesha as a child of beo master: started once
// there is something to export, restarted (after 1 s, doubling to 30 s)
// when it exits, reloaded with SIGHUP when the exports change, stopped
// (SIGTERM, then SIGKILL after 5 s) when beo master stops — and by the
// kernel if beo master dies (the parent-death signal).
type ganeshaServer struct {
	exe, dir string // ganesha.nfsd; the run directory (config, log, pid, recovery)
	bind     netip.Addr
	port     int
	log      *slog.Logger

	mu      sync.Mutex
	conf    []byte
	ids     map[string]int
	proc    *os.Process
	serving bool   // answering on bind:port since its last start
	err     string // why it does not run, "" when it does or has not been asked to
	kick    chan struct{}
	up      chan struct{} // closed while serving; replaced on each start
}

func newGanesha(exe, dir string, bind netip.Addr, port int, log *slog.Logger) *ganeshaServer {
	return &ganeshaServer{exe: exe, dir: dir, bind: bind, port: port, log: log, ids: map[string]int{},
		kick: make(chan struct{}, 1), up: make(chan struct{})}
}

func (g *ganeshaServer) confPath() string { return filepath.Join(g.dir, "ganesha.conf") }

// LogPath is where ganesha logs.
func (g *ganeshaServer) logPath() string { return filepath.Join(g.dir, "ganesha.log") }

func (g *ganeshaServer) apply(exports []Export) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, x := range exports {
		if g.ids[x.Path] == 0 {
			g.ids[x.Path] = len(g.ids) + 1 // Export_Id 0 is the pseudo root
		}
	}
	conf := GaneshaConfig(exports, g.bind, g.port, g.dir, g.ids)
	if bytes.Equal(conf, g.conf) {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(g.dir, "recovery"), 0o755); err != nil {
		return fmt.Errorf("nfs: %w", err)
	}
	if err := atomicfile.WriteFile(g.confPath(), conf, 0o644); err != nil {
		return fmt.Errorf("nfs: %w", err)
	}
	g.conf = conf
	if g.proc != nil {
		if err := g.proc.Signal(syscall.SIGHUP); err == nil {
			g.log.Info("nfs: ganesha reloads its exports", "exports", len(exports))
		}
		return nil
	}
	if len(exports) > 0 {
		select {
		case g.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

func (g *ganeshaServer) run(ctx context.Context) {
	select {
	case <-g.kick:
	case <-ctx.Done():
		return
	}
	backoff := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		err := g.once(ctx)
		if ctx.Err() != nil {
			return
		}
		g.mu.Lock()
		g.err = fmt.Sprintf("ganesha.nfsd exited: %v (its log: %s)", err, g.logPath())
		g.mu.Unlock()
		g.log.Error("nfs: ganesha.nfsd exited; restarting", "err", err, "log", g.logPath(), "in", backoff)
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// once runs ganesha.nfsd until it exits or ctx ends (then stops it).
func (g *ganeshaServer) once(ctx context.Context) error {
	lf, err := os.OpenFile(g.logPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	type started struct {
		p   *os.Process
		err error
	}
	st := make(chan started, 1)
	exited := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the child ends:
		// this goroutine keeps its thread until the child is gone.
		runtime.LockOSThread()
		cmd := exec.Command(g.exe, "-F", "-L", g.logPath(), "-f", g.confPath(), "-p", filepath.Join(g.dir, "ganesha.pid"))
		cmd.Stdout, cmd.Stderr = lf, lf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
		if err := cmd.Start(); err != nil {
			st <- started{nil, err}
			return
		}
		st <- started{cmd.Process, nil}
		exited <- cmd.Wait()
	}()
	s := <-st
	if s.err != nil {
		return s.err
	}
	g.mu.Lock()
	g.proc = s.p
	g.mu.Unlock()
	g.log.Info("nfs: ganesha.nfsd started", "pid", s.p.Pid, "addr", net.JoinHostPort(g.bind.String(), strconv.Itoa(g.port)), "conf", g.confPath(), "log", g.logPath())
	defer func() {
		g.mu.Lock()
		g.proc, g.serving = nil, false
		g.up = make(chan struct{})
		g.mu.Unlock()
	}()
	// Serving once the port answers.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		addr := net.JoinHostPort(g.bind.String(), strconv.Itoa(g.port))
		start := time.Now()
		for wctx.Err() == nil {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				g.mu.Lock()
				g.serving, g.err = true, ""
				close(g.up)
				g.mu.Unlock()
				g.log.Info("nfs: ganesha serves", "addr", addr, "after", time.Since(start).Round(time.Millisecond))
				return
			}
			select {
			case <-wctx.Done():
			case <-time.After(25 * time.Millisecond):
			}
		}
	}()
	select {
	case err := <-exited:
		if err == nil {
			err = errors.New("exit status 0")
		}
		return err
	case <-ctx.Done():
	}
	s.p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		s.p.Kill()
		<-exited
	}
	g.log.Info("nfs: ganesha.nfsd stopped")
	return nil
}

func (g *ganeshaServer) status() (bool, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.serving {
		return true, ""
	}
	if g.err != "" {
		return false, g.err
	}
	return false, "ganesha.nfsd is starting"
}

// wait waits for a start in progress; it does not wait for a ganesha
// that exited (it is restarted after a pause) or was never started.
func (g *ganeshaServer) wait(ctx context.Context) bool {
	g.mu.Lock()
	up, serving, failed := g.up, g.serving, g.err != "" || g.conf == nil
	g.mu.Unlock()
	if serving {
		return true
	}
	if failed {
		return false
	}
	select {
	case <-up:
		return true
	case <-ctx.Done():
		return false
	}
}
