package slave

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/criu"
	"github.com/beo-cluster/beo/pkg/nodefs"
	"github.com/beo-cluster/beo/pkg/procstat"
	"github.com/beo-cluster/beo/pkg/wire"
	"golang.org/x/sys/unix"
)

// Process migration, the node's half (the master's is pkg/master
// move.go; CRIU runs through pkg/criu).
//
// The source node checkpoints (OpCheckpoint): it receives the CRIU
// program's closure like an exec's, waits for a process that stops
// itself (bproc.Move), refuses a process with unread stdin (those bytes
// would be lost with the old pipe), stops the job's process tree
// (SIGSTOP to its cgroup), dumps it (leave_running: it stays stopped,
// and so will the copy be), and sends the image as a tar stream. Then it waits for the
// master's Verdict: Commit kills the stopped tree, and the job's exec
// ends with Result.Moved instead of an exit status; anything else
// (the restore failed, the master went away) lets it continue here.
//
// The target node restores (an OpExec whose Exec.Restore is set): the
// exec's files arrive as usual — the program's closure and CRIU's, so
// every file the program maps is where it was — then the image; the job
// gets its stdio pipes and cgroup as any exec, and CRIU, started in that
// cgroup, restores the tree as bpslave's own child (--restore-sibling), with
// the job's pipes in place of the ones it had. From there on the job is
// like one started here: its output streams, signals, Updates and
// Result.

// verdictTimeout bounds how long a checkpointed process stays stopped
// waiting for the master's verdict; selfStopTimeout how long a process
// that asked to move has to stop itself.
const (
	verdictTimeout  = 5 * time.Minute
	selfStopTimeout = 10 * time.Second
)

// checkpoint serves OpCheckpoint.
func (ss *session) checkpoint(st net.Conn, ck *wire.Checkpoint) {
	defer st.Close()
	log := ss.log.With("node", ss.node, "op", "checkpoint", "id", ck.ID)
	fail := func(err error) {
		log.Warn("checkpoint failed", "err", err)
		wire.Write(st, wire.CheckpointReply{Err: ss.view(err), Code: wire.CodeOf(err)})
	}
	if _, _, err := ss.fetch(st, ck.Files); err != nil {
		if errors.Is(err, errDesync) {
			ss.refuse(st, err)
			return
		}
		fail(err)
		return
	}
	r := ss.live.byID(ck.ID)
	switch {
	case r == nil:
		fail(wire.Errorf(wire.CodeNotFound, "no such job"))
		return
	case !ss.root:
		fail(wire.Errorf(wire.CodePermission, "bpslave is not root: it cannot checkpoint"))
		return
	}
	if ck.Self {
		if err := waitStopped(r.pid, selfStopTimeout); err != nil {
			fail(err)
			return
		}
	}
	if n := r.unreadStdin(); n > 0 {
		fail(wire.Errorf(wire.CodeRefused, "pid %d has %d bytes of stdin it has not read yet; they cannot move with it", r.pid, n))
		return
	}
	dir, err := os.MkdirTemp("", "beo-checkpoint-")
	if err != nil {
		fail(err)
		return
	}
	defer os.RemoveAll(dir)
	// Stop the tree for the checkpoint and until the verdict: the copy
	// must not fall behind the original. CRIU records the tasks as
	// stopped, so the restored copy waits for the master's SIGCONT too.
	reply := wire.CheckpointReply{Pipes: r.pipes(), Continue: ck.Self || !stopped(r.pid)}
	// A process that stopped itself is continued by the master if this
	// fails before the image is sent: after the master has noted why,
	// which the process asks it once continued (bproc.Rfork).
	resume := func() {
		if !ck.Self {
			r.resumeIf(reply.Continue)
		}
	}
	if r.cg != nil {
		reply.Cgroup = filepath.Base(string(r.cg.g))
	}
	if !ck.Self {
		r.stop()
		if err := waitStopped(r.pid, selfStopTimeout); err != nil {
			resume()
			fail(err)
			return
		}
	}
	tool := criu.Tool{Path: rooted(ss.cfg.Root, ck.Tool), KeepLog: rooted(ss.cfg.Root, filepath.Join(nodefs.LogDir, "checkpoint.log")), LoadModules: ss.criuModules}
	took := time.Now()
	if err := tool.Dump(context.Background(), r.pid, dir); err != nil {
		resume()
		fail(err)
		return
	}
	files, size, err := listImage(dir)
	if err != nil {
		resume()
		fail(err)
		return
	}
	reply.Size = size
	log.Info("checkpointed", "pid", r.pid, "bytes", reply.Size, "took", time.Since(took))
	if err := wire.Write(st, reply); err != nil {
		resume()
		return
	}
	if err := writeImage(&exactWriter{w: st, left: size}, files); err != nil {
		resume()
		log.Warn("checkpoint not delivered: the process continues here", "err", err)
		return // closing st tells the master: its read of the image fails
	}
	os.RemoveAll(dir) // the master has the image: the node's RAM is free again
	st.SetReadDeadline(time.Now().Add(verdictTimeout))
	var v wire.Verdict
	if err := wire.Read(st, &v); err != nil || !v.Commit {
		r.resumeIf(reply.Continue)
		log.Info("not moved: the process continues here", "pid", r.pid, "err", err)
		return
	}
	if !r.moveAway() {
		log.Info("not moved: the process ended first", "pid", r.pid)
		wire.Write(st, ss.failure(wire.Errorf(wire.CodeNotFound, "pid %d ended before it could move", r.pid)))
		return
	}
	log.Info("moved away", "pid", r.pid)
	wire.Write(st, wire.Result{})
}

// fetch receives and places files the master sends before an operation
// (a checkpoint's tool, bplib's stage): Need, each missing file's bytes,
// then placement — an exec's first half. It returns how many files it
// placed and how many it had to receive.
func (ss *session) fetch(st net.Conn, refs []wire.FileRef) (placed, received int, err error) {
	files := make([]fileRef, 0, len(refs))
	var bad error
	for _, f := range refs {
		if err := checkRef(f.Path, f.Hash, f.Target); err != nil {
			bad = err
			break
		}
		files = append(files, fileRef{Path: f.Path, Hash: f.Hash, Target: f.Target, Mode: f.Mode})
	}
	files = ss.unmirrored(files)
	need := []string{}
	if bad == nil {
		need = ss.missing(files)
	}
	if err := wire.Write(st, wire.Need{Hashes: need}); err != nil {
		return 0, 0, err
	}
	if bad != nil {
		return 0, 0, bad
	}
	if err := ss.receive(st, need); err != nil {
		return 0, 0, fmt.Errorf("%w: %w", errDesync, err)
	}
	return len(files), len(need), ss.placer.place(files)
}

// restore restores the checkpoint in img as r's process: child holds the
// job's ends of its stdio (as start made them), sys its start (the job's
// cgroup).
func (ss *session) restore(r *running, ex *wire.Exec, img string, child [3]*os.File, sys *syscall.SysProcAttr) error {
	if !ss.root {
		return wire.Errorf(wire.CodePermission, "bpslave is not root: it cannot restore a process")
	}
	var pipes []criu.Pipe
	for i, ino := range ex.Restore.Pipes {
		if ino != 0 && child[i] != nil && !isDevNull(child[i]) {
			pipes = append(pipes, criu.Pipe{Inode: ino, File: child[i]})
		}
	}
	// CRIU runs as bpslave (root), in the job's cgroup; the process it
	// restores has its own identity from the image.
	t := criu.Tool{Path: rooted(ss.cfg.Root, ex.Restore.Tool), Sys: &syscall.SysProcAttr{UseCgroupFD: sys.UseCgroupFD, CgroupFD: sys.CgroupFD},
		KeepLog: rooted(ss.cfg.Root, filepath.Join(nodefs.LogDir, "restore.log")), LoadModules: ss.criuModules}
	restoreMu.Lock()
	undo := overcommit()
	pid, err := t.Restore(context.Background(), img, pipes)
	undo()
	restoreMu.Unlock()
	if err != nil {
		return err
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		unix.Kill(pid, unix.SIGKILL)
		return err
	}
	r.proc, r.pid, r.argv = p, pid, ex.Argv
	return nil
}

// criuModules loads the kernel modules CRIU needs (criu.Modules) from
// the node's initrd before a checkpoint or a restore: init loads the
// config's bootmodules in the background after the node is up, and a
// move right after a boot found tun missing ("Unable to create tun").
// Modules already loaded cost a read of /proc/modules.
func (ss *session) criuModules(names ...string) error {
	load := ss.cfg.LoadModules
	if load == nil {
		return nil
	}
	start := time.Now()
	err := load(names...)
	if d := time.Since(start); err != nil || d > 100*time.Millisecond {
		ss.log.Info("kernel modules for CRIU", "node", ss.node, "took", d.Round(time.Millisecond), "err", err)
	}
	return err
}

// restoreMu makes restores on this node one at a time (overcommit).
var restoreMu sync.Mutex

const overcommitSysctl = "/proc/sys/vm/overcommit_memory"

// overcommit lets the kernel overcommit memory (vm.overcommit_memory 1)
// for the moment of a restore, if its policy is the default heuristic
// (0), and returns what puts it back. CRIU maps each area writable
// before it sets its protection: a Go program's 512 MiB PROT_NONE arena
// reservation, free while it is PROT_NONE, is one private writable
// mapping for that instant, which the heuristic refuses (ENOMEM) on a
// node with less memory than that. Nothing is touched by the mapping.
func overcommit() (undo func()) {
	b, err := os.ReadFile(overcommitSysctl)
	if err != nil || strings.TrimSpace(string(b)) != "0" {
		return func() {}
	}
	if os.WriteFile(overcommitSysctl, []byte("1"), 0) != nil {
		return func() {}
	}
	return func() { os.WriteFile(overcommitSysctl, []byte("0"), 0) }
}

// receiveImage reads a checkpoint's tar stream of size bytes into a new
// directory.
func receiveImage(st net.Conn, size int64) (string, error) {
	dir, err := os.MkdirTemp("", "beo-restore-")
	if err != nil {
		return "", err
	}
	if err := unpack(io.LimitReader(st, size), dir); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("%w: checkpoint image: %w", errDesync, err)
	}
	return dir, nil
}

// imageFile is one file of a checkpoint's directory.
type imageFile struct {
	name, path string
	size       int64
}

// listImage lists dir's regular files and returns the exact size of the
// tar stream writeImage makes of them: a 512-byte header per file (their
// names are CRIU's, short), its bytes padded to 512, two zero blocks.
// The image is streamed from the dump's own files as the master reads
// it, never packed into a file first: a packed copy took the RAM root
// twice the image's size, and a 700 MiB process could not move from a
// 2.5 GiB node (its root is a tmpfs of half its RAM).
func listImage(dir string) ([]imageFile, int64, error) {
	var files []imageFile
	size := int64(1024)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if len(d.Name()) > 99 {
			return fmt.Errorf("checkpoint file name %q is too long", d.Name())
		}
		files = append(files, imageFile{name: d.Name(), path: p, size: fi.Size()})
		size += 512 + (fi.Size()+511)/512*512
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("checkpoint image: %w", err)
	}
	return files, size, nil
}

// writeImage writes files (listImage's) as a tar stream to w.
func writeImage(w io.Writer, files []imageFile) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o600, Size: f.size, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}); err != nil {
			return err
		}
		src, err := os.Open(f.path)
		if err != nil {
			return err
		}
		n, err := io.Copy(tw, src)
		src.Close()
		if err == nil && n != f.size {
			err = fmt.Errorf("checkpoint file %s changed size", f.name)
		}
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// exactWriter passes on exactly left bytes: a stream announced with a
// size must never carry more (the master would read the rest as the
// next message) and is incomplete with fewer.
type exactWriter struct {
	w    io.Writer
	left int64
}

func (e *exactWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > e.left {
		return 0, fmt.Errorf("checkpoint image longer than the %d bytes announced", e.left)
	}
	n, err := e.w.Write(p)
	e.left -= int64(n)
	return n, err
}

// unpack writes a tar stream of plain files (packDir's) into dir; any
// other entry, or a name with a directory, is refused.
func unpack(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg || h.Name != filepath.Base(h.Name) || h.Name == "." || h.Name == ".." {
			return fmt.Errorf("bad entry %q", h.Name)
		}
		f, err := os.OpenFile(filepath.Join(dir, h.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
}

// waitStopped waits until pid is in the stopped state (it stopped itself).
func waitStopped(pid int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for !stopped(pid) {
		if time.Now().After(deadline) {
			return wire.Errorf(wire.CodeRefused, "pid %d did not stop itself within %v", pid, limit)
		}
		if unix.Kill(pid, 0) != nil {
			return wire.Errorf(wire.CodeNotFound, "pid %d is gone", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// stopped reports whether pid is stopped (state T in /proc/PID/stat).
func stopped(pid int) bool {
	st, err := procstat.Read(pid)
	return err == nil && st.State == 'T'
}

// pipes names the job's own pipes among the process's fds 0–2 (0 for an
// fd that is anything else).
func (r *running) pipes() [3]uint64 {
	var out [3]uint64
	ours := []*os.File{r.stdin, r.outs[0], r.outs[1]}
	for fd, f := range ours {
		if f == nil {
			continue
		}
		ino, err := criu.FileInode(f)
		if err == nil && criu.PipeInode(r.pid, fd) == ino {
			out[fd] = ino
		}
	}
	return out
}

// unreadStdin is how many bytes wait in the job's stdin pipe.
func (r *running) unreadStdin() int {
	if r.stdin == nil {
		return 0
	}
	n, err := unix.IoctlGetInt(int(r.stdin.Fd()), unix.TIOCINQ) // = FIONREAD, for pipes too
	if err != nil {
		return 0
	}
	return n
}

// stop stops every process of the job (SIGSTOP).
func (r *running) stop() { r.signalTree(unix.SIGSTOP) }

// resumeIf lets a checkpointed job go on here, if it was running.
func (r *running) resumeIf(cont bool) {
	if cont {
		r.signalTree(unix.SIGCONT)
	}
}

// signalTree sends sig to every process of the job: its cgroup's, or
// without one its process group.
func (r *running) signalTree(sig unix.Signal) {
	if r.cg != nil {
		if pids, err := r.cg.g.Procs(); err == nil {
			for _, pid := range pids {
				unix.Kill(pid, sig)
			}
			return
		}
	}
	unix.Kill(-r.pid, sig)
}

// moveAway ends the job here: its process runs on another node now.
// It reports false, and does nothing, if the job ended already (killed
// while it was stopped for the move: its Result is on its way).
func (r *running) moveAway() bool {
	r.mu.Lock()
	if r.finished || unix.Kill(r.pid, 0) != nil {
		r.mu.Unlock()
		return false
	}
	r.moved = true
	r.mu.Unlock()
	r.killAll()
	return true
}

// wasMoved reports whether the job's process moved to another node.
func (r *running) wasMoved() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.moved
}

// byID finds the running job the master knows as id.
func (l *live) byID(id uint64) *running {
	l.mu.Lock()
	defer l.mu.Unlock()
	for r := range l.jobs {
		if r.id == id {
			return r
		}
	}
	return nil
}
