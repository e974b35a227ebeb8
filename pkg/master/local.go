package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/elfdeps"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/nodespec"
	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/beo-cluster/beo/pkg/xfer"
)

// Work on the master itself, node -1, for a client that asks for it: a
// client on a node (nodeclients.go), for which -1 is the master and not
// the machine it runs on. A local client does it itself (pkg/bproc runs
// node -1 with os/exec, bpcp copies local files), but gets the same
// answer if it asks.
//
// A process runs as the caller (uid, gid, groups), in its own process
// group, with the caller's argv and environment — BEO_SOCKET set to the
// master's own socket, so that bproc clients it runs reach the master
// directly — in the caller's directory if the caller can enter it there,
// else in "/". A program named without a slash (the node had no copy of
// it) is looked up on the PATH of the environment, on the master, as the
// caller. stdin, stdout and stderr travel as for a node's process (the
// client's OpAttach FD 0; FD 1 and 2 opened to the client when output
// first comes, named in Result.Opened); -I/-O/-E name files on the
// master, opened as the caller; Signal frames reach the process group;
// the client going away is a hangup. Not done here, unlike on a node:
// rlimits (the process gets the master's), and bpstat -p does not list
// it (it is an ordinary process of the master's, ps shows it).
//
// bpcp's master:PATH is an OpPut or OpGet with Node -1: the tar stream is
// unpacked at PATH (pkg/xfer: every file lands whole or not at all) or
// packed from it, with the caller's filesystem identity (pkg/creds), as
// a node would.
//
// A master that is not root can act only for its own uid (a simulated
// cluster run by a user): anyone else is refused.

// mayActAs refuses a caller this master cannot act as on its own host.
func mayActAs(who caller) error {
	if euid := os.Geteuid(); euid != 0 && uint32(euid) != who.cred.UID {
		return wire.NodeErrorf(nodespec.Master, wire.CodePermission, "bpmaster runs as uid %d and cannot act as uid %d", euid, who.cred.UID)
	}
	return nil
}

// localPath is p on the master: a relative path is taken from "/", as on
// a node; a trailing slash is kept (the target must be a directory).
func localPath(p string) string {
	c := filepath.Join("/", p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// localFile carries out a client's OpPut or OpGet on the master itself.
func (m *Master) localFile(ctx context.Context, who caller, st net.Conn, op wire.Op, f wire.File) {
	defer st.Close()
	fail := func(err error) {
		st.SetWriteDeadline(time.Now().Add(attachTimeout))
		wire.Write(st, wire.Fail(err))
		st.Close()
		st.SetReadDeadline(time.Now().Add(attachTimeout))
		io.Copy(io.Discard, st) // what the client still sends
	}
	if err := mayActAs(who); err != nil {
		fail(err)
		return
	}
	if len(f.Sources) > 0 {
		fail(wire.Errorf(wire.CodeRefused, "%s", wire.SourcesRefused)) // the client sends them
		return
	}
	path := localPath(f.Path)
	opts := xfer.Options{Recursive: f.Recursive, Preserve: f.Preserve}
	log := m.log.With(who.logAttrs()...).With("op", op, "path", path)
	switch op {
	case wire.OpPut:
		err := m.asUser.do(ctx, who.cred, func() error { return xfer.Unpack(st, path, opts) })
		if err != nil {
			log.Info("put on the master failed", "err", err)
			fail(err)
			return
		}
		st.SetReadDeadline(time.Now().Add(link.WriteTimeout))
		io.Copy(io.Discard, st) // up to the client's close
		wire.Write(st, wire.Result{})
		log.Info("put on the master")
	case wire.OpGet:
		replied := false
		err := m.asUser.do(ctx, who.cred, func() error {
			p, err := xfer.Scan([]string{path}, xfer.Options{Recursive: f.Recursive})
			if err != nil {
				return err
			}
			replied = true
			if err := wire.Write(st, wire.Result{}); err != nil {
				return err
			}
			return p.Write(st)
		})
		if err != nil && !replied {
			fail(err)
		} else if err != nil {
			log.Info("get from the master cut short", "err", err)
		}
	}
}

// localExec runs a client's exec of node -1 on the master and relays it
// to the end (see above); cl is the exec stream, closed on return.
func (m *Master) localExec(ctx context.Context, c *client, cl net.Conn, ex wire.Exec) {
	defer cl.Close()
	who := c.who
	wantIn := !ex.NoIO && !ex.NoStdin
	if wantIn && !c.att.Expect(ex.ID) {
		wire.Write(cl, wire.Fail(wire.NodeErrorf(nodespec.Master, wire.CodeInvalid, "exec id %d is already in use", ex.ID)))
		return
	}
	p, err := m.startLocal(ctx, who, ex)
	if err != nil {
		if wantIn {
			c.att.Abandon(ex.ID)
		}
		m.log.Info("local exec failed", append(who.logAttrs(), "path", ex.Path, "err", err)...)
		wire.Write(cl, wire.Fail(wire.OnNode(nodespec.Master, err)))
		return
	}
	log := m.log.With(who.logAttrs()...).With("pid", p.proc.Pid, "path", p.path)
	log.Info("started on the master for a client")
	if err := wire.Write(cl, wire.Started{PID: p.proc.Pid}); err != nil {
		p.hangup()
	}
	if wantIn {
		in, err := c.att.Claim(ex.ID)
		if err != nil || p.stdin == nil {
			if in != nil {
				in.Close()
			}
			if p.stdin != nil {
				p.stdin.Close()
			}
		} else {
			go func() { // not waited for (like os/exec with a terminal)
				io.Copy(p.stdin, in)
				p.stdin.Close()
				in.Close()
			}()
			defer in.Close()
		}
	}
	// The client's signals go to the group; the client going away is a hangup.
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			var sg wire.Signal
			if err := wire.Read(cl, &sg); err != nil {
				select {
				case <-done:
				default:
					p.hangup()
				}
				return
			}
			p.signal(syscall.Signal(sg.Sig))
		}
	}()
	var opened atomic.Uint32
	var outs sync.WaitGroup
	for i, r := range p.outs {
		if r == nil {
			continue
		}
		fd := i + 1
		outs.Add(1)
		go func() {
			defer outs.Done()
			defer r.Close()
			buf := make([]byte, 32<<10)
			n, err := r.Read(buf)
			if n == 0 && err != nil {
				return // silent: no stream
			}
			o, oerr := link.OpenOutput(c.mux, ex.ID, fd)
			if oerr != nil {
				return // the client is gone: the process gets a broken pipe
			}
			opened.Or(uint32(wire.OpenedFD(fd)))
			if _, err := o.Write(buf[:n]); err == nil {
				io.Copy(o, r)
			}
			o.Close()
		}()
	}
	ps, werr := p.proc.Wait()
	p.reaped.Store(true)
	outs.Wait()
	var res wire.Result
	if werr != nil {
		res = wire.Fail(wire.NodeErrorf(nodespec.Master, wire.CodeInternal, "%s (pid %d): %w", p.path, p.proc.Pid, werr))
	} else if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Signal = int(ws.Signal())
	} else {
		res.Status = ps.ExitCode()
	}
	res.Opened = uint8(opened.Load())
	log.Info("exited on the master", "status", res.Status, "signal", res.Signal)
	wire.Write(cl, res)
}

// localProc is a process startLocal started.
type localProc struct {
	proc  *os.Process
	path  string
	stdin *os.File    // our end of its stdin pipe, or nil
	outs  [2]*os.File // our ends of its stdout and stderr pipes, or nil
	// reaped: Wait returned, so its pid (and group id) may be another's.
	reaped atomic.Bool
}

func (p *localProc) signal(sig syscall.Signal) {
	if !p.reaped.Load() {
		syscall.Kill(-p.proc.Pid, sig)
	}
}

// hangup is the client going away, as on a node: SIGHUP and SIGCONT to
// the group, SIGKILL hangupGrace later if it still runs. (The group is
// the process's own until Wait has reaped its leader.)
func (p *localProc) hangup() {
	p.signal(syscall.SIGHUP)
	p.signal(syscall.SIGCONT)
	time.AfterFunc(hangupGrace, func() { p.signal(syscall.SIGKILL) })
}

// hangupGrace is how long a hung-up process has before SIGKILL.
const hangupGrace = 5 * time.Second

// startLocal resolves ex's program and directory, opens its
// redirections as the caller, and starts it as the caller.
func (m *Master) startLocal(ctx context.Context, who caller, ex wire.Exec) (_ *localProc, err error) {
	if err := mayActAs(who); err != nil {
		return nil, err
	}
	if len(ex.Argv) == 0 || ex.Path == "" {
		return nil, wire.NodeErrorf(nodespec.Master, wire.CodeInvalid, "empty command")
	}
	env := m.localEnv(ex.Env)
	p := &localProc{path: ex.Path}
	dir := "/"
	var run string // what starts: p.path, or the shell that runs it
	argv := ex.Argv
	var child [3]*os.File // the process's ends, closed here once it has them
	var ours []*os.File   // ours, closed here on failure
	defer func() {
		for _, f := range child {
			if f != nil {
				f.Close()
			}
		}
		if err != nil {
			for _, f := range ours {
				f.Close()
			}
		}
	}()
	err = m.asUser.do(ctx, who.cred, func() error {
		if ex.Dir != "" {
			if fi, err := os.Stat(ex.Dir); err == nil && fi.IsDir() {
				if f, err := os.Open(ex.Dir); err == nil {
					f.Close()
					dir = ex.Dir
				}
			}
		}
		prog, err := lookPath(ex.Path, dir, envValue(env, "PATH"))
		if err != nil {
			return err
		}
		p.path, run = prog, prog
		if elfdeps.NeedsShell(prog) { // a script without #!, as execvp runs it
			run, argv = elfdeps.Shell, elfdeps.ShellArgv(prog, ex.Argv)
		}
		for fd, name := range []string{ex.Stdin, ex.Stdout, ex.Stderr} {
			if name == "" {
				continue
			}
			if !filepath.IsAbs(name) {
				name = filepath.Join(dir, name)
			}
			var f *os.File
			if fd == 0 {
				f, err = os.Open(name)
			} else {
				f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			}
			if err != nil {
				return err
			}
			child[fd] = f
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for fd := range child {
		switch {
		case child[fd] != nil: // redirected
		case ex.NoIO || (fd == 0 && ex.NoStdin):
			if child[fd], err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
				return nil, err
			}
		default:
			r, w, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			if fd == 0 {
				child[fd], p.stdin = r, w
				ours = append(ours, w)
			} else {
				child[fd], p.outs[fd-1] = w, r
				ours = append(ours, r)
			}
		}
	}
	sys := &syscall.SysProcAttr{Setpgid: true}
	if os.Geteuid() == 0 {
		sys.Credential = &syscall.Credential{Uid: who.cred.UID, Gid: who.cred.GID, Groups: who.cred.Groups}
	}
	proc, err := os.StartProcess(run, argv, &os.ProcAttr{Dir: dir, Env: env, Files: child[:], Sys: sys})
	if err != nil {
		return nil, wire.NodeErrorf(nodespec.Master, wire.CodeOf(err), "%s: %w", ex.Path, err)
	}
	p.proc = proc
	return p, nil
}

// localEnv is a client's environment for a process on the master: its
// BEO_SOCKET (the node's client socket, for a client on a node) replaced
// by the master's own.
func (m *Master) localEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, e := range env {
		if !strings.HasPrefix(e, socketEnv+"=") {
			out = append(out, e)
		}
	}
	if p := m.socket.Load(); p != nil {
		out = append(out, socketEnv+"="+*p)
	}
	return out
}

// socketEnv is bproc.SocketEnv (pkg/bproc is the clients' package).
const socketEnv = "BEO_SOCKET"

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// lookPathAs resolves the program of ex named without a slash on the
// master's filesystem, as the caller, on the PATH of ex's environment.
func (m *Master) lookPathAs(ctx context.Context, who caller, ex wire.Exec) (string, error) {
	var p string
	err := m.asUser.do(ctx, who.cred, func() (err error) {
		p, err = lookPath(ex.Path, "/", envValue(ex.Env, "PATH"))
		return err
	})
	return p, err
}

// lookPath finds the program a client named: an absolute path as it is,
// one with a slash from dir, a bare name on path (or the usual
// directories), as exec.LookPath would; the caller's identity must be
// able to execute it (syscallAccess).
func lookPath(name, dir, path string) (string, error) {
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		if err := syscallAccess(name); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return name, nil
	}
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, name)
		if syscallAccess(p) == nil {
			return p, nil
		}
	}
	return "", wire.Errorf(wire.CodeNotFound, "%s: %w", name, errNotOnPath)
}

var errNotOnPath = errors.New("executable file not found in $PATH")
