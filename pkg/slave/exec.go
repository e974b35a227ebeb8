package slave

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/creds"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/wire"
	"golang.org/x/sys/unix"
)

// hangupGrace is how long a hung-up process group has between SIGHUP and
// SIGKILL.
const hangupGrace = 5 * time.Second

// exec runs one process for the master (see the wire package for the flow):
//
//  1. Need: the closure's hashes missing from the cache; then read each
//     FileHeader and its bytes into the cache, verified.
//  2. Place the closure under Root; open -I/-O/-E redirections as the
//     caller; wait for the stdin stream (OpAttach FD 0) unless NoIO or
//     NoStdin.
//  3. Start Root+Path with Argv and exactly Env, in Root+Dir (or Root if
//     the caller cannot see that directory), as the caller, leading its
//     own session on a real node (so a checkpoint of it holds its whole
//     session: move.go) or its own process group on beo sim's (jobSys),
//     in a cgroup of its own (cgroup.go), every
//     signal at its default disposition and none blocked (signals.go);
//     apply the rlimits; reply Started.
//  4. Deliver Signal frames to the group (or, with PID, to that one
//     process of the job); open an output stream to the master (OpAttach
//     FD 1 or 2) when stdout or stderr first yields bytes; send Update
//     frames as the job's processes change (kids.go); when the process
//     has exited and its stdout and stderr are drained into their
//     streams, reply one Result naming the streams opened
//     (Result.Opened).
//
// The stdin stream may arrive at any moment, before the exec header too:
// the master opens it together with the exec stream, and the exec expects
// it (link.Rendezvous) as soon as its request is checked, so it waits
// while the files arrive. Output streams are the slave's to open, and
// only for output there is: a silent process (true, a job writing to
// files) costs the session no stream at all, where opening both with
// the exec cost two streams' setup, headers and teardown per process.
//
// The Need is always the first reply, so the master's reading order never
// changes: a request refused outright (bad closure, an identity the slave
// cannot take) gets an empty Need and then its Result{Err}. An empty Need
// may travel in one write with the reply after it (replies). The process
// starts only once its stdin stream is there. Any failure before the start
// is one Result{Err} naming the node.
//
// The master closing the exec stream is a hangup: SIGHUP and SIGCONT to
// the group, and hangupGrace later SIGKILL to the whole job (its cgroup),
// with the output streams abandoned so nothing stays blocked on a reader
// that left. The session ending kills every job at once (orphans.go).
//
// Rlimits hold from the program's first instruction. A process whose
// rlimits are the ones it would inherit from bpslave anyway is started
// directly, as the caller (a root slave switches uid, gid and groups in
// the child before the execve). One with other limits starts through the
// exec trampoline (spawn_small.go: a tiny static program; spawn.go: the Go
// one where that cannot run), which sets the limits on itself and then
// drops privileges and execs. (Setting them with prlimit(2)
// after the fork instead leaves the program running under bpslave's own
// limits for a moment — test/cluster saw `ulimit -n` print the wrong
// value — and fails outright for another uid without CAP_SYS_RESOURCE.)
// A hard limit the slave may not raise (not root, no CAP_SYS_RESOURCE, or
// above the kernel's ceiling) is clamped to what it can grant rather than
// failing the run. A user's hard limits are clamped first to bpslave's
// own (ownCeiling): the trampoline sets them as root, and the limits a
// client asks for are whatever it says — a user's RLIMIT_RTPRIO 99 or
// unlimited RLIMIT_MEMLOCK would have been granted.
func (ss *session) exec(st net.Conn, ex *wire.Exec) {
	defer st.Close()
	log := ss.log.With("node", ss.node, "op", "exec", "id", ex.ID)
	rep := &replies{st: st}
	r, err := ss.prepare(st, rep, ex)
	if err != nil {
		if stdinWanted(ex) {
			ss.attach.Abandon(ex.ID)
		}
		log.Warn("exec failed", "path", ex.Path, "err", err)
		if errors.Is(err, errDesync) {
			ss.refuse(st, err) // the stream still carries file bytes
			return
		}
		rep.write(ss.failure(err))
		return
	}
	defer ss.live.track(r)()
	log = log.With("pid", r.pid)
	log.Debug("started", "path", ex.Path, "uid", ex.Cred.UID) // a line per process is noise at Info
	if err := rep.write(wire.Started{PID: r.pid}); err != nil {
		r.hangup()
	}
	res := r.run(st, log)
	if r.wasMoved() { // its process runs on another node now (move.go)
		res = wire.Result{Moved: true, Opened: res.Opened, Usage: res.Usage}
	}
	if res.Err != "" {
		n := ss.node
		res.Err, res.Code, res.Node = fmt.Sprintf("%s (pid %d): %s", ex.Path, r.pid, res.Err), wire.CodeInternal, &n
	}
	switch {
	case res.Err != "":
		log.Warn("lost the process", "err", res.Err)
	case res.Signal != 0:
		log.Info("killed", "signal", res.Signal)
	default:
		log.Debug("exited", "status", res.Status)
	}
	if err := wire.Write(st, res); err != nil {
		log.Warn("result not delivered", "err", err)
	}
}

// replies writes an exec's first replies on its stream. A Need that asks
// for nothing (the node has every file: the usual case) is held back and
// goes out in one write with the reply after it, Started or the
// failure's Result — the same frames in the same order, so the master
// wakes once for both instead of once each. A Need that asks for files
// goes out at once, and so does the Need of an exec that waits for
// anything more from the master before its start: a stdin stream (a
// master may open it only once it has read the Need) or a restore's
// image (sent after the Need).
type replies struct {
	st   net.Conn
	held *wire.Need
}

// need sends n, or holds it back (see above).
func (w *replies) need(n wire.Need, hold bool) error {
	if hold && len(n.Hashes) == 0 {
		w.held = &n
		return nil
	}
	return wire.Write(w.st, n)
}

// write sends v, after the Need held back if there is one.
func (w *replies) write(v any) error {
	if w.held == nil {
		return wire.Write(w.st, v)
	}
	var b bytes.Buffer
	n := *w.held
	w.held = nil
	if err := wire.Write(&b, n); err != nil {
		return err
	}
	if err := wire.Write(&b, v); err != nil {
		return err
	}
	_, err := w.st.Write(b.Bytes())
	return err
}

// errDesync marks a failure that leaves unread file bytes on the stream.
var errDesync = errors.New("file transfer failed")

// running is a started process and its plumbing.
type running struct {
	id    uint64 // the master's exec id
	pid   int
	proc  *os.Process
	in    net.Conn      // the stdin stream, or nil
	stdin *os.File      // our end of the stdin pipe, or nil
	outs  [2]*os.File   // our ends of the stdout/stderr pipes, or nil
	cg    *jobGroup     // the job's cgroup, or nil (cgroup.go)
	exits *exitLog      // the node's process exits (exits.go), or nil
	argv  []string      // as started (kids.go)
	meter meter         // its accounting (usage.go)
	every time.Duration // between usage readings after the first (Config.UsageInterval)
	grace time.Duration
	// open opens the output stream for fd 1 or 2 (to the master).
	open func(fd int) (net.Conn, error)

	mu       sync.Mutex
	finished bool        // Result is being sent: no more signals
	kill     *time.Timer // SIGKILL after a hangup
	dropped  bool        // the hangup's grace ran out: output is dropped
	streams  [2]net.Conn // output streams opened so far (fd 1, 2)
	opened   uint8       // Result.Opened
	moved    bool        // the process moved to another node (move.go)
}

// prepare carries out steps 1–3 and returns the running process.
func (ss *session) prepare(st net.Conn, rep *replies, ex *wire.Exec) (*running, error) {
	files, bad := ss.check(ex)
	need := ss.missing(files)
	if bad != nil {
		need = []string{} // nothing to send: the refusal follows
	}
	if err := rep.need(wire.Need{Hashes: need}, ex.Restore == nil && !stdinWanted(ex)); err != nil {
		return nil, fmt.Errorf("exec %s: %w", ex.Path, err)
	}
	if bad != nil {
		return nil, bad
	}
	if err := ss.receive(st, need); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", ex.Path, errDesync, err)
	}
	if err := ss.placer.place(files); err != nil {
		return nil, fmt.Errorf("%s: %w", ex.Path, err)
	}
	if h := ss.cfg.BeforeExec; h != nil && ss.root && ex.Cred.UID != 0 {
		// The node learns the caller's user (kickback) before the program
		// runs, once a while per user (users.go); without it the job
		// still runs, only nameless.
		if err := ss.users.ensure(context.Background(), ex.Cred, h); err != nil {
			ss.log.Warn("before exec", "node", ss.node, "uid", ex.Cred.UID, "err", err)
		}
	}
	if ex.Cred.UID != 0 {
		ex.Rlim = ownCeiling(ex.Rlim)
	}
	how := startHow{spawn: ss.needsSpawn(ex.Rlim)}
	var dir string
	var redir redirections
	var err error
	if how.lazyDir = ss.root && !how.spawn && ex.Restore == nil && !redirected(ex); how.lazyDir {
		dir = ss.jobDir(ex) // checked by the child's own chdir, as the caller (start)
	} else if dir, redir, err = ss.asCaller(ex); err != nil {
		return nil, err
	}
	defer redir.close() // the child has its own copies once started
	var img string      // a moved process's checkpoint (move.go)
	if ex.Restore != nil {
		if img, err = receiveImage(st, ex.Restore.Size); err != nil {
			return nil, err
		}
		defer os.RemoveAll(img)
	}
	var in net.Conn
	if stdinWanted(ex) {
		if in, err = ss.attach.Claim(ex.ID); err != nil {
			return nil, fmt.Errorf("%s: %w", ex.Path, err)
		}
	}
	r, err := ss.start(ex, dir, &redir, in, img, how)
	if err != nil {
		if in != nil {
			in.Close()
		}
		return nil, err
	}
	id := ex.ID
	r.id = id
	r.open = func(fd int) (net.Conn, error) { return link.OpenOutput(ss.mux, id, fd) }
	return r, nil
}

// check validates the request and the caller's identity.
func (ss *session) check(ex *wire.Exec) ([]fileRef, error) {
	if !ss.root && ex.Cred.UID != ss.uid {
		return nil, wire.Errorf(wire.CodePermission, "cannot run as uid %d: bpslave is not root", ex.Cred.UID)
	}
	if ex.Path == "" || len(ex.Argv) == 0 {
		return nil, wire.Errorf(wire.CodeInvalid, "empty command")
	}
	files := make([]fileRef, 0, len(ex.Files))
	for _, f := range ex.Files {
		if err := checkRef(f.Path, f.Hash, f.Target); err != nil {
			return nil, fmt.Errorf("%s: %w", ex.Path, err)
		}
		files = append(files, fileRef{Path: f.Path, Hash: f.Hash, Target: f.Target, Mode: f.Mode})
	}
	files = ss.unmirrored(files) // the node reads those through a mount of the master's tree
	if stdinWanted(ex) && !ss.attach.Expect(ex.ID) {
		return nil, wire.Errorf(wire.CodeInvalid, "exec id %d is already in use", ex.ID)
	}
	return files, nil
}

// missing lists, once each, the hashes of files not in the cache.
func (ss *session) missing(files []fileRef) []string {
	seen := map[string]bool{}
	need := []string{}
	for _, f := range files {
		if f.Target != "" || seen[f.Hash] {
			continue
		}
		seen[f.Hash] = true
		if !ss.cfg.Cache.Has(f.Hash) {
			need = append(need, f.Hash)
		}
	}
	return need
}

// receive reads a FileHeader and its bytes for each needed hash, in any
// order, into the cache.
func (ss *session) receive(st net.Conn, need []string) error {
	want := make(map[string]bool, len(need))
	for _, h := range need {
		want[h] = true
	}
	for range need {
		var fh wire.FileHeader
		if err := wire.Read(st, &fh); err != nil {
			return err
		}
		if !want[fh.Hash] {
			return fmt.Errorf("master sent unrequested file %q", fh.Hash)
		}
		delete(want, fh.Hash)
		if err := ss.cfg.Cache.Put(fh.Hash, fh.Size, st); err != nil {
			return err
		}
	}
	return nil
}

// stdinWanted reports whether the master opens a stdin stream for ex.
func stdinWanted(ex *wire.Exec) bool {
	return !ex.NoIO && !ex.NoStdin
}

// redirections are the files a process gets for -I/-O/-E.
type redirections struct{ in, out, err *os.File }

func (r redirections) close() {
	for _, f := range []*os.File{r.in, r.out, r.err} {
		if f != nil {
			f.Close()
		}
	}
}

// asCaller resolves the working directory and opens the redirections with
// the caller's filesystem identity.
func (ss *session) asCaller(ex *wire.Exec) (string, redirections, error) {
	dir := ss.cfg.Root
	var r redirections
	err := creds.Do(ex.Cred, func() error {
		dir = ss.callerDir(ex)
		// The exec trampolines are started in dir by the slave, before
		// they take the caller's identity: the caller's right to enter
		// it (search permission, as chdir checks) is checked here.
		if dir != ss.cfg.Root {
			if err := unix.Faccessat(unix.AT_FDCWD, dir, unix.X_OK, unix.AT_EACCESS); err != nil {
				return &os.PathError{Op: "chdir", Path: ex.Dir, Err: err}
			}
		}
		var err error
		if ex.Stdin != "" {
			if r.in, err = openRedirect(rooted(ss.cfg.Root, ex.Stdin), os.O_RDONLY); err != nil {
				return err
			}
		}
		if ex.Stdout != "" {
			if r.out, err = create(rooted(ss.cfg.Root, ex.Stdout)); err != nil {
				return err
			}
		}
		if ex.Stderr != "" {
			if ex.Stderr == ex.Stdout { // one file, one offset, as with 2>&1
				r.err, err = dup(r.out)
			} else {
				r.err, err = create(rooted(ss.cfg.Root, ex.Stderr))
			}
		}
		return err
	})
	if err != nil {
		r.close()
		return "", redirections{}, err
	}
	return dir, r, nil
}

// jobDir is where the job asks to run: Root+Dir, or Root.
func (ss *session) jobDir(ex *wire.Exec) string {
	if ex.Dir == "" {
		return ss.cfg.Root
	}
	return rooted(ss.cfg.Root, ex.Dir)
}

// callerDir is jobDir if the calling thread's identity sees a directory
// there, else Root.
func (ss *session) callerDir(ex *wire.Exec) string {
	d := ss.jobDir(ex)
	if fi, err := os.Stat(d); err == nil && fi.IsDir() {
		return d
	}
	return ss.cfg.Root
}

// redirected reports whether the job has -I, -O or -E files.
func redirected(ex *wire.Exec) bool { return ex.Stdin != "" || ex.Stdout != "" || ex.Stderr != "" }

func create(p string) (*os.File, error) {
	return openRedirect(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
}

// openRedirect opens a -I/-O/-E file without waiting: a fifo's open
// blocks until its other end opens, and it held the slave's thread (a
// locked one, in creds.Do) for ever — a user opening many filled
// bpslave with threads until the Go runtime gave up. A fifo read with
// no writer reads end of file; one written with no reader is ENXIO. The
// file is made blocking again for the job.
func openRedirect(p string, flag int) (*os.File, error) {
	f, err := os.OpenFile(p, flag|syscall.O_NONBLOCK, 0o644)
	if errors.Is(err, syscall.ENXIO) {
		return nil, &os.PathError{Op: "open", Path: p, Err: errors.New("a fifo no process is reading")}
	}
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func dup(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup %s: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// startHow is how start starts a process: through the exec trampoline
// (spawn: other limits), and whether dir is still to be checked.
//
// lazyDir: dir is the job's own directory, not yet checked as the caller.
// A root slave's direct start switches to the caller's uid, gid and
// groups in the child before it changes to dir (SysProcAttr.Credential,
// then Dir: Go's fork does them in that order), so the child's chdir is
// the caller's own check — and a stricter one than asCaller's stat (it
// also needs search permission on dir itself). Only if the start fails
// is dir checked as the caller, and the start tried again in Root if
// the caller cannot see dir: the outcome asCaller's check first would
// have had, without borrowing the caller's identity for every job.
type startHow struct {
	spawn, lazyDir bool
}

// start forks the process with its stdio wired up and applies its rlimits.
// Files it hands to the child are taken out of redir.
func (ss *session) start(ex *wire.Exec, dir string, redir *redirections, in net.Conn, img string, how startHow) (*running, error) {
	r := &running{in: in, grace: hangupGrace, exits: ss.exits}
	var child [3]*os.File // the process's fds 0, 1, 2; closed here after the fork
	defer func() {
		for _, f := range child {
			if f != nil && !isDevNull(f) {
				f.Close()
			}
		}
	}()
	cgName := strconv.FormatUint(ex.ID, 10)
	if ex.Restore != nil && ex.Restore.Cgroup != "" {
		cgName = ex.Restore.Cgroup // the group it had (move.go)
	}
	r.cg = ss.jobs.make(cgName) // the job's cgroup, entered at birth (cgroup.go)
	defer r.cg.started()
	fail := func(err error) (*running, error) {
		r.cg.remove(ss.log)
		if r.stdin != nil {
			r.stdin.Close()
		}
		for _, f := range r.outs {
			if f != nil {
				f.Close()
			}
		}
		return nil, fmt.Errorf("%s: %w", ex.Path, err)
	}
	var err error
	// stdin
	switch {
	case redir.in != nil:
		child[0], redir.in = redir.in, nil
	case ex.NoIO || ex.NoStdin:
		child[0], err = devNull()
	default:
		r.stdin, child[0], err = pipe(true)
	}
	if err != nil {
		return fail(err)
	}
	// stdout, stderr
	for i, f := range []**os.File{&redir.out, &redir.err} {
		switch {
		case *f != nil:
			child[i+1], *f = *f, nil
		case ex.NoIO:
			child[i+1], err = devNull()
		default:
			r.outs[i], child[i+1], err = pipe(false)
		}
		if err != nil {
			return fail(err)
		}
	}
	env := ss.jobEnv(ex.Env) // never nil: nil would mean "inherit bpslave's"
	prog := rooted(ss.cfg.Root, ex.Path)
	attr := &os.ProcAttr{Dir: dir, Env: env, Files: child[:], Sys: ss.jobSys()}
	r.cg.use(attr.Sys)
	if img != "" {
		if err := ss.restore(r, ex, img, child, attr.Sys); err != nil {
			return fail(err)
		}
		return r, nil
	}
	if how.spawn {
		// Other limits: set before the switch (spawn_small.go, spawn.go).
		p, err := ss.spawnAny(prog, ex, env, attr)
		if err != nil {
			return fail(err)
		}
		r.started(p, ex.Argv, ss.cfg.UsageInterval)
		return r, nil
	}
	if ss.root {
		attr.Sys.Credential = &syscall.Credential{Uid: ex.Cred.UID, Gid: ex.Cred.GID, Groups: ex.Cred.Groups}
	}
	p, err := startProcess(prog, ex.Argv, attr)
	if err != nil && how.lazyDir {
		var d string
		if creds.Do(ex.Cred, func() error { d = ss.callerDir(ex); return nil }) == nil && d != attr.Dir {
			attr.Dir = d // the caller cannot see dir: Root, as asCaller would have said
			p, err = startProcess(prog, ex.Argv, attr)
		}
	}
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // "fork/exec <root-joined path>" says nothing the caller needs
		}
		return fail(err)
	}
	r.started(p, ex.Argv, ss.cfg.UsageInterval)
	return r, nil
}

// started records the started process.
func (r *running) started(p *os.Process, argv []string, every time.Duration) {
	r.proc, r.pid, r.argv = p, p.Pid, argv
	r.meter.start = time.Now()
	r.every = every
	if r.every <= 0 {
		r.every = DefaultUsageInterval
	}
}

// needsSpawn reports whether a process with rlimits rl must start
// through the exec trampoline: limits other than the ones the process
// would inherit, or signal dispositions a direct start would pass on
// (signals.go). Another identity alone does not: a root slave's direct
// start switches it in the child (SysProcAttr.Credential: setgroups,
// setgid, setuid before the execve), as the trampoline would.
func (ss *session) needsSpawn(rl []wire.Rlimit) bool {
	if ss.spawnAll {
		return true
	}
	for _, l := range rl {
		var have unix.Rlimit
		if unix.Getrlimit(l.Resource, &have) != nil || have.Cur != l.Cur || have.Max != l.Max {
			return true
		}
	}
	return false
}

// inheritLimits makes this process's children inherit exactly the limits
// getrlimit(2) reports: the Go runtime raises the soft RLIMIT_NOFILE at
// start and restores the original in children, unless the limit is set
// explicitly. needsSpawn compares against getrlimit.
func inheritLimits() {
	var l unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &l) == nil {
		unix.Setrlimit(unix.RLIMIT_NOFILE, &l)
	}
}

// startProcess is os.StartProcess, retried while the program is "text
// file busy". A file the slave has just written (a cache object, a copy)
// can still be open for writing in a child forked by a concurrent exec in
// the instant before that child's own exec closes its inherited
// descriptors (golang.org/issue/22315); the window is that short, so a
// bounded retry is the cure cmd/go uses too.
func startProcess(prog string, argv []string, attr *os.ProcAttr) (*os.Process, error) {
	const budget = 2 * time.Second
	deadline := time.Now().Add(budget)
	pause := time.Millisecond
	for {
		p, err := os.StartProcess(prog, argv, attr)
		if !errors.Is(err, syscall.ETXTBSY) || time.Now().After(deadline) {
			return p, err
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// ownCeiling clamps each limit of rl to this process's own: a hard
// limit no higher than bpslave's, a soft one no higher than that hard
// limit. What bpslave runs with (the node's defaults) is what root gave
// every process on the node; a user may lower it, not raise it.
func ownCeiling(rl []wire.Rlimit) []wire.Rlimit {
	out := make([]wire.Rlimit, 0, len(rl))
	for _, l := range rl {
		var have unix.Rlimit
		if unix.Getrlimit(l.Resource, &have) != nil {
			continue // a resource this kernel does not know: left at its default
		}
		l.Max = min(l.Max, have.Max)
		l.Cur = min(l.Cur, l.Max)
		out = append(out, l)
	}
	return out
}

// limit applies rlimits to pid (0: this process), clamping hard limits it
// may not raise. The trampoline uses it on itself.
func limit(pid int, rl []wire.Rlimit) error {
	for _, l := range rl {
		want := unix.Rlimit{Cur: l.Cur, Max: l.Max}
		err := unix.Prlimit(pid, l.Resource, &want, nil)
		if errors.Is(err, unix.EPERM) {
			var have unix.Rlimit
			if unix.Prlimit(pid, l.Resource, nil, &have) == nil {
				want.Max = min(want.Max, have.Max)
				want.Cur = min(want.Cur, want.Max)
				err = unix.Prlimit(pid, l.Resource, &want, nil)
			}
		}
		if errors.Is(err, unix.ESRCH) {
			return nil // already gone: its exit status will tell
		}
		if err != nil {
			return fmt.Errorf("rlimit %d (%d, %d): %w", l.Resource, l.Cur, l.Max, err)
		}
	}
	return nil
}

// run relays stdio and signals until the process has exited and its
// output is delivered, and returns its Result.
func (r *running) run(st net.Conn, log *slog.Logger) wire.Result {
	// Signals from the master; the stream ending is a hangup.
	sigDone := make(chan struct{})
	go func() {
		defer close(sigDone)
		for {
			var sg wire.Signal
			if err := wire.Read(st, &sg); err != nil {
				r.hangup()
				return
			}
			if sg.Sig < 0 || sg.Sig > 64 {
				log.Warn("bad signal", "sig", sg.Sig)
				continue
			}
			send := r.signal
			switch {
			case sg.Hangup: // its client is gone
				r.hangup()
				continue
			case sg.PID != 0: // one process, from its ghost (kids.go)
				send = func(s syscall.Signal) error { return r.signalOne(sg.PID, s) }
			case sg.Stopped: // once it has stopped itself (a failed move)
				go func() {
					// Not stopped within the bound: something continued
					// it already (the checkpoint's end does, on most
					// failures), and it runs.
					if waitStopped(r.pid, selfStopTimeout) == nil {
						r.signal(syscall.Signal(sg.Sig))
					}
				}()
				continue
			}
			if err := send(syscall.Signal(sg.Sig)); err != nil {
				log.Debug("signal", "sig", sg.Sig, "err", err)
			}
		}
	}()

	// stdin: the master's FD 0 stream into the pipe, closed at EOF. With a
	// -I redirection the stream is read and dropped.
	var in sync.WaitGroup
	if c := r.in; c != nil {
		in.Add(1)
		go func() {
			defer in.Done()
			if r.stdin == nil {
				io.Copy(io.Discard, c)
				return
			}
			relay(r.stdin, c)
			r.stdin.Close()
		}()
	}
	// stdout, stderr: each pipe into its FD 1 or 2 stream, opened at the
	// pipe's first bytes and closed after its EOF (see output).
	var outs sync.WaitGroup
	for i, p := range r.outs {
		if p == nil { // -N, -O/-E: nothing will come
			continue
		}
		outs.Add(1)
		go func() {
			defer outs.Done()
			r.output(i+1, p, log)
			p.Close()
		}()
	}

	kids := r.watchKids(st, log) // Update frames for the ghosts and the usage (kids.go, usage.go)
	ws, ru, werr := reap(r.proc)
	if !r.wasMoved() { // its ghost lives on with the moved process (move.go)
		kids.exited(r.pid, ws, werr)
	}
	outs.Wait()
	kids.stop()
	r.cg.drain() // the job is over: nothing of it stays (cgroup.go)
	usage := r.meter.final(r.cg, ru)
	r.cg.remove(log)

	r.mu.Lock()
	r.finished = true
	if r.kill != nil {
		r.kill.Stop()
	}
	opened := r.opened
	r.mu.Unlock()
	// Stop reading stdin and signals: nothing is left to receive them.
	if c := r.in; c != nil {
		c.SetReadDeadline(time.Now())
		if r.stdin != nil {
			r.stdin.Close() // unblocks a write into a pipe nobody reads
		}
		in.Wait()
		c.Close()
	}
	st.SetReadDeadline(time.Now())
	<-sigDone

	if werr != nil {
		return wire.Result{Err: fmt.Sprintf("wait: %v", werr), Opened: opened, Usage: usage}
	}
	if ws.Signaled() {
		return wire.Result{Signal: int(ws.Signal()), Opened: opened, Usage: usage}
	}
	return wire.Result{Status: ws.ExitStatus(), Opened: opened, Usage: usage}
}

// output relays pipe p, the process's fd 1 or 2, to the master. The
// stream is opened at the first bytes, so a process that writes nothing
// there costs none. If the master stops taking output, the process blocks
// on its next write (the stream's window is full); if the stream cannot
// be opened or breaks, the rest is dropped so the process can finish.
func (r *running) output(fd int, p *os.File, log *slog.Logger) {
	b := relayBufs.Get().(*[]byte)
	defer relayBufs.Put(b)
	n, err := p.Read(*b)
	if n == 0 && err != nil {
		return // EOF (or a hangup closed the pipe) before any output
	}
	c, err := r.open(fd)
	if err != nil {
		log.Debug("output stream", "fd", fd, "err", err)
		io.Copy(io.Discard, p)
		return
	}
	defer c.Close()
	r.mu.Lock()
	r.streams[fd-1] = c
	r.opened |= wire.OpenedFD(fd)
	if r.dropped {
		c.SetWriteDeadline(time.Now())
	}
	r.mu.Unlock()
	_, err = c.Write((*b)[:n])
	if err == nil {
		_, err = io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{p}, *b)
	}
	if err != nil {
		io.Copy(io.Discard, p)
	}
}

// signal sends sig to the process's group until the Result is on its way.
//
// The group is addressed by number. That number cannot be reused while
// any member of the group lives; between the last member's exit and the
// Result a reuse would need the kernel to wrap around its whole pid space.
func (r *running) signal(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return nil
	}
	return unix.Kill(-r.pid, sig)
}

// hangup tells the group its master went away, and kills it if it has not
// finished after the grace period.
func (r *running) hangup() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished || r.kill != nil {
		return
	}
	unix.Kill(-r.pid, unix.SIGHUP)
	unix.Kill(-r.pid, unix.SIGCONT)
	r.kill = time.AfterFunc(r.grace, func() {
		r.killAll()
		// Output nobody takes any more is dropped: a stream the master
		// stopped reading stops blocking (one opened from now on at once),
		// and whoever still holds the pipes (a daemon that left the
		// group) loses them.
		r.mu.Lock()
		r.dropped = true
		for _, c := range r.streams {
			if c != nil {
				c.SetWriteDeadline(time.Now())
			}
		}
		r.mu.Unlock()
		for _, p := range r.outs {
			if p != nil {
				p.Close()
			}
		}
	})
}

// stage caches and places files the master prestages (bplib): Need, the
// file bytes, then one Result — the first half of an exec's exchange.
func (ss *session) stage(st net.Conn, sg *wire.Stage) {
	defer st.Close()
	log := ss.log.With("node", ss.node, "op", "stage")
	placed, received, err := ss.fetch(st, sg.Files)
	if err != nil {
		log.Warn("stage failed", "err", err)
		err = fmt.Errorf("stage: %w", err)
		if errors.Is(err, errDesync) {
			ss.refuse(st, err)
			return
		}
		wire.Write(st, ss.failure(err))
		return
	}
	log.Info("staged", "files", placed, "received", received)
	wire.Write(st, wire.Result{})
}

// jobSys is how a job's process starts: leading a session of its own on
// a real node (Config.JobSessions), so that a checkpoint of it holds its
// whole session (move.go; CRIU refuses a tree whose session leader is
// outside it); leading a process group of its own in bpslave's session
// on beo sim's nodes, where nothing moves. There every job would
// otherwise be a session, and so, with the kernel's autogroup
// scheduling (sched_autogroup_enabled, on in Debian), a scheduling
// group of its own: 64 simulated nodes' busy MPI ranks took 64 shares
// of the host's CPU against one for the master, its slaves and the
// user's mpirun, which then waited 30 s for its ranks' exchange and lost
// the nodes' heartbeats (bench/mpi/README). A real node's jobs run in
// its jobs cgroup, which autogrouping leaves alone, and have the node's
// CPUs to themselves.
func (ss *session) jobSys() *syscall.SysProcAttr {
	if ss.cfg.JobSessions {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Setpgid: true}
}
