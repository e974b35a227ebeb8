// Package criu checkpoints and restores process trees with CRIU
// (Checkpoint/Restore In Userspace, Debian package criu), the engine of
// beo's process migration (pkg/slave move.go, pkg/master move.go).
//
// It runs `criu swrk FD`, CRIU's RPC mode, one run per request, and
// speaks its protobuf messages through go-criu's rpc package. The RPC mode
// and not the command line, because a restore must be able to:
//
//   - hand the restored process this slave's own stdio pipes in place of
//     the ones it had on the source node (inherit_fd: the pipes' ends
//     are passed to CRIU as extra descriptors, which the command line
//     could only do through a shell's redirections), and
//   - make the restored tree a child of the caller (rst_sibling, RPC
//     only), so bpslave waits for it, gets its exit status and kills it
//     like a process it started itself.
//
// Runs are started with the caller's SysProcAttr, so CRIU — and with
// manage_cgroups_mode ignore the restored tree — starts in the job's
// cgroup (CLONE_INTO_CGROUP).
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

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
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
	// KeepLog, if set, is where a failed run's whole log is kept.
	KeepLog string
	// LoadModules, if set, is called with Modules before each run. A
	// node loads its bootmodules in the background once it is up
	// (pkg/pid1), so a move soon after a boot would otherwise find tun
	// or nf_tables missing and fail; its error is not fatal (CRIU then
	// says what is missing).
	LoadModules func(names ...string) error
}

// Dump checkpoints the tree rooted at pid into dir and leaves it as it
// was (leave_running). To keep the tree from running on after its
// checkpoint, stop it first (SIGSTOP): CRIU records stopped tasks as
// stopped and leaves them so, and the restored copy is stopped too.
// (leave_stopped would say it, but the CRIU of Debian 12, 3.17, ignores
// that RPC option and kills the tree after the dump.)
func (t Tool) Dump(ctx context.Context, pid int, dir string) error {
	opts := &rpc.CriuOpts{
		Pid:               proto.Int32(int32(pid)),
		LogFile:           proto.String(DumpLog),
		LogLevel:          proto.Int32(4),
		ManageCgroupsMode: rpc.CriuCgMode_IGNORE.Enum(),
		LeaveRunning:      proto.Bool(true),
	}
	_, err := t.run(ctx, rpc.CriuReqType_DUMP, opts, dir, DumpLog, nil)
	return err
}

// Pipe is one pipe the restored process had, by inode number, and the
// file that replaces it.
type Pipe struct {
	Inode uint64
	File  *os.File
}

// Restore restores the tree checkpointed in dir as a child of the caller
// (rst_sibling) and returns the pid of its root. The process's pipes
// named in pipes are replaced by those files.
func (t Tool) Restore(ctx context.Context, dir string, pipes []Pipe) (int, error) {
	opts := &rpc.CriuOpts{
		LogFile:           proto.String(RestoreLog),
		LogLevel:          proto.Int32(4),
		RstSibling:        proto.Bool(true),
		ManageCgroupsMode: rpc.CriuCgMode_IGNORE.Enum(),
	}
	var extra []*os.File
	for _, p := range pipes {
		// In CRIU's process fd 3 is the RPC socket, then these.
		opts.InheritFd = append(opts.InheritFd, &rpc.InheritFd{
			Key: proto.String(fmt.Sprintf("pipe:[%d]", p.Inode)),
			Fd:  proto.Int32(int32(4 + len(extra))),
		})
		extra = append(extra, p.File)
	}
	resp, err := t.run(ctx, rpc.CriuReqType_RESTORE, opts, dir, RestoreLog, extra)
	if err != nil {
		return 0, err
	}
	pid := int(resp.GetRestore().GetPid())
	if pid <= 0 {
		return 0, &Error{Op: "restore", Msg: "criu reported no pid"}
	}
	return pid, nil
}

// run sends one request to a new `criu swrk` and returns its answer.
func (t Tool) run(ctx context.Context, typ rpc.CriuReqType, opts *rpc.CriuOpts, dir, logName string, extra []*os.File) (*rpc.CriuResp, error) {
	op := strings.ToLower(typ.String())
	if t.LoadModules != nil {
		t.LoadModules(Modules...)
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("criu %s: %w", op, err)
	}
	defer d.Close()
	// CRIU opens the image directory as /proc/CALLER/fd/N: our own fd.
	opts.ImagesDirFd = proto.Int32(int32(d.Fd()))
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("criu %s: socketpair: %w", op, err)
	}
	cln, srv := os.NewFile(uintptr(fds[0]), "criu-client"), os.NewFile(uintptr(fds[1]), "criu-server")
	defer cln.Close()
	cmd := exec.CommandContext(ctx, t.Path, "swrk", "3")
	cmd.ExtraFiles = append([]*os.File{srv}, extra...)
	cmd.SysProcAttr = t.Sys
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Start()
	srv.Close()
	if err != nil {
		return nil, fmt.Errorf("criu %s: %w", op, err)
	}
	resp, rerr := exchange(cln, &rpc.CriuReq{Type: typ.Enum(), Opts: opts})
	cln.Close() // swrk exits once its socket closes
	werr := cmd.Wait()
	if rerr == nil && !resp.GetSuccess() {
		rerr = errors.New(resp.GetCrErrmsg())
	}
	if rerr != nil {
		e := &Error{Op: op, Msg: rerr.Error(), Log: logErrors(filepath.Join(dir, logName))}
		if t.KeepLog != "" {
			if b, err := os.ReadFile(filepath.Join(dir, logName)); err == nil && os.WriteFile(t.KeepLog, b, 0o600) == nil {
				e.LogFile = t.KeepLog
			}
		}
		if werr != nil && stderr.Len() > 0 {
			e.Log = append(e.Log, strings.TrimSpace(stderr.String()))
		}
		return nil, e
	}
	return resp, nil
}

// exchange writes req on the RPC socket and reads the one response.
func exchange(sk *os.File, req *rpc.CriuReq) (*rpc.CriuResp, error) {
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := sk.Write(b); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	buf := make([]byte, 64<<10) // a seqpacket message is read whole
	n, err := sk.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("no answer from criu: %w", err)
	}
	var resp rpc.CriuResp
	if err := proto.Unmarshal(buf[:n], &resp); err != nil {
		return nil, fmt.Errorf("bad answer from criu: %w", err)
	}
	if resp.GetType() != req.GetType() {
		return nil, fmt.Errorf("criu answered %v to %v", resp.GetType(), req.GetType())
	}
	return &resp, nil
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
