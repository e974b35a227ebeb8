// Package criu checkpoints and restores process trees with CRIU
// (Checkpoint/Restore In Userspace, Debian package criu), the engine of
// beo's process migration (pkg/slave move.go, pkg/master move.go).
//
// It runs CRIU's command line, one run per request:
//
//	criu dump    -D DIR -o dump.log -v4 --manage-cgroups=ignore -t PID -R
//	criu restore -D DIR -o restore.log -v4 --manage-cgroups=ignore -d -S \
//	             --pidfile restore.pid [--inherit-fd fd[N]:pipe:[INODE]]...
//
// which does everything a restore needs:
//
//   - hand the restored process this slave's own stdio pipes in place of
//     the ones it had on the source node (--inherit-fd: the pipes' ends
//     are CRIU's descriptors 3, 4, …, passed as exec.Cmd.ExtraFiles), and
//   - make the restored tree a child of the caller (--restore-sibling,
//     with --restore-detached: CRIU leaves once the tree is restored and
//     writes its root's pid to the pid file), so bpslave waits for it,
//     gets its exit status and kills it like a process it started itself.
//
// The command line and not CRIU's RPC mode (criu swrk, protobuf
// messages): a Go client of the RPC links the protobuf runtime and the
// RPC's generated messages into beo, and their package inits (message
// registration, and protobuf's detrand sampling the binary's own file)
// ran at the start of every beo applet: ~0.4 ms of each `bpsh`.
//
// Runs are started with the caller's SysProcAttr, so CRIU — and with
// --manage-cgroups=ignore the restored tree — starts in the job's cgroup
// (CLONE_INTO_CGROUP).
//
// What CRIU itself cannot move (README "Process migration"): an
// established TCP connection, a socket to a process outside the tree,
// files absent on the target (every file-backed mapping must exist at
// the same path with the same size), and a pid already in use on the
// target. Each fails the checkpoint or the restore with CRIU's own
// message (Error), and the process continues where it was.
package criu

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Log files CRIU writes in the image directory.
const (
	DumpLog    = "dump.log"
	RestoreLog = "restore.log"
)

// Tool runs one CRIU binary.
type Tool struct {
	Path string               // the criu program
	Sys  *syscall.SysProcAttr // how to start it (nil: as is)
	// KeepLog, if set, is where a failed run's whole log is kept: a path
	// in a directory only root may write (nodefs.LogDir), as the tool
	// runs as root.
	KeepLog string
	// LoadModules, if set, is called with Modules before each run. A
	// node loads its bootmodules in the background once it is up
	// (pkg/pid1), so a move soon after a boot would otherwise find tun
	// or nf_tables missing and fail; its error is not fatal (CRIU then
	// says what is missing).
	LoadModules func(names ...string) error
}

// Dump checkpoints the tree rooted at pid into dir and leaves it as it
// was (--leave-running). To keep the tree from running on after its
// checkpoint, stop it first (SIGSTOP): CRIU records stopped tasks as
// stopped and leaves them so, and the restored copy is stopped too.
// (--leave-stopped would say it, but the CRIU of Debian 12, 3.17, kills
// the tree after the dump with it.)
func (t Tool) Dump(ctx context.Context, pid int, dir string) error {
	return t.run(ctx, "dump", dir, DumpLog, nil, "-t", strconv.Itoa(pid), "-R")
}

// Pipe is one pipe the restored process had, by inode number, and the
// file that replaces it.
type Pipe struct {
	Inode uint64
	File  *os.File
}

// restorePid is the file, in the image directory, a restore writes its
// root's pid to.
const restorePid = "restore.pid"

// Restore restores the tree checkpointed in dir as a child of the caller
// (--restore-sibling) and returns the pid of its root. The process's
// pipes named in pipes are replaced by those files.
func (t Tool) Restore(ctx context.Context, dir string, pipes []Pipe) (int, error) {
	args := []string{"-d", "-S", "--pidfile", restorePid}
	var extra []*os.File
	for _, p := range pipes {
		// CRIU's descriptor 3 is the first of its ExtraFiles.
		args = append(args, "--inherit-fd", fmt.Sprintf("fd[%d]:pipe:[%d]", 3+len(extra), p.Inode))
		extra = append(extra, p.File)
	}
	os.Remove(filepath.Join(dir, restorePid)) // one in the image would be stale
	if err := t.run(ctx, "restore", dir, RestoreLog, extra, args...); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(dir, restorePid))
	pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || perr != nil || pid <= 0 {
		return 0, &Error{Op: "restore", Msg: "criu reported no pid"}
	}
	return pid, nil
}

// run runs `criu OP` on the image directory dir, with args after the
// options every run has, and extra as CRIU's descriptors 3, 4, ….
func (t Tool) run(ctx context.Context, op, dir, logName string, extra []*os.File, args ...string) error {
	if t.LoadModules != nil {
		t.LoadModules(Modules...)
	}
	argv := append([]string{op, "-D", dir, "-o", logName, "-v4", "--manage-cgroups=ignore"}, args...)
	cmd := exec.CommandContext(ctx, t.Path, argv...)
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = t.Sys
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// CRIU's exit is the answer: a task it forked for a restore that
	// failed can hold its stderr open, and Wait then waited for that
	// task, not for CRIU — a failed restore hung a move for five minutes
	// (TestPXE), until the job's cgroup was killed.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err == nil || errors.Is(err, exec.ErrWaitDelay) { // exited 0; something else kept stderr
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("criu %s: %w", op, err) // it did not run
	}
	e := &Error{Op: op, Msg: strings.TrimSpace(stderr.String()), Log: logErrors(filepath.Join(dir, logName))}
	if e.Msg == "" {
		e.Msg = err.Error()
	}
	if t.KeepLog != "" {
		if b, err := os.ReadFile(filepath.Join(dir, logName)); err == nil && keep(t.KeepLog, b) == nil {
			e.LogFile = t.KeepLog
		}
	}
	return e
}

// keep writes a log to path, in a directory made (0700) if missing,
// replacing what is there by rename: a link planted at path is replaced,
// never written through.
func keep(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*") // O_EXCL: a new file
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path) // replaces a link, not what it names
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// Error is a failed CRIU run: its message and the error lines of its log.
type Error struct {
	Op  string   // "dump" or "restore"
	Msg string   // CRIU's answer
	Log []string // the "Error (…)" lines of its log, in order
	// LogFile is where the whole log was kept (Tool.KeepLog), or "".
	LogFile string
}

func (e *Error) Error() string {
	msg := "criu " + e.Op + " failed"
	if why := e.Reason(); why != "" {
		msg += ": " + why
	} else if m := strings.TrimSpace(e.Msg); m != "" {
		msg += ": " + m
	}
	if e.LogFile != "" {
		msg += " (log: " + e.LogFile + ")"
	}
	return msg
}

// Reason is the most telling line of the log, rephrased where beo knows
// what a user can do about it.
func (e *Error) Reason() string {
	for _, l := range e.Log {
		for _, h := range hints {
			if strings.Contains(l, h.match) {
				return h.say
			}
		}
	}
	// CRIU's last error lines are "Dumping FAILED" and the like: the
	// first one says what went wrong.
	for _, l := range e.Log {
		if !strings.Contains(l, "FAILED") && !strings.Contains(l, "Diag module missing") && !strings.Contains(l, "exited, status") {
			return l
		}
	}
	return ""
}

// Modules are the kernel modules CRIU needs on a node before it will run
// at all (its feature detection opens nf_tables and makes a tun and a
// veth device), and the socket diagnostics it dumps sockets with.
var Modules = []string{"nf_tables", "tun", "veth", "unix_diag", "inet_diag", "tcp_diag", "netlink_diag", "af_packet_diag"}

var hints = []struct{ match, say string }{
	{"kerndat", "CRIU cannot probe this node's kernel (modules " + strings.Join(Modules[:3], ", ") +
		" not loaded: add `bootmodule " + strings.Join(Modules, " ") + "` to /etc/beowulf/config)"},
	{"Connected TCP socket", "the process has an established TCP connection, which cannot move"},
	{"Unsupported proto 262", "the process has an MPTCP socket (Go's default for listeners since Go 1.24), which cannot move"},
	{"TCP socket", "the process has a TCP socket, which cannot move"},
	{"External socket", "the process has a socket to a process outside it, which cannot move"},
	{"unix socket", "the process has a unix socket to a process outside it, which cannot move"},
}

// logErrors returns the "Error (…)" lines of a CRIU log, without their
// timestamps, at most 8.
func logErrors(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		i := strings.Index(l, "Error (")
		if i < 0 {
			continue
		}
		l = l[i:]
		if j := strings.Index(l, "): "); j > 0 {
			l = l[j+3:]
		}
		out = append(out, strings.TrimSpace(l))
		if len(out) == 8 {
			break
		}
	}
	return out
}

// PipeInode returns the inode number of fd's pipe in process pid, 0 if
// fd is not a pipe.
func PipeInode(pid, fd int) uint64 {
	l, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + strconv.Itoa(fd))
	if err != nil || !strings.HasPrefix(l, "pipe:[") || !strings.HasSuffix(l, "]") {
		return 0
	}
	n, _ := strconv.ParseUint(l[len("pipe:["):len(l)-1], 10, 64)
	return n
}

// FileInode returns the inode number of an open file.
func FileInode(f *os.File) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}
