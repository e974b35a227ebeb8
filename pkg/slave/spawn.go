package slave

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
	"golang.org/x/sys/unix"
)

// The exec trampoline.
//
// A root bpslave starting a process for another user cannot apply that
// user's rlimits with prlimit(2) after the fork: the child has already
// switched to the user's uid, and prlimit on a process with other
// credentials needs CAP_SYS_RESOURCE — which the root of a container or a
// restricted machine (CapEff without bit 24) does not have. And for any
// user, prlimit after the fork lets the program run its first
// instructions under the slave's limits. Nor may setrlimit(2) be called
// in the child between fork and exec: os.StartProcess offers no hook
// there.
//
// So bpslave starts its own binary (/proc/self/exe) under the reserved
// argv[0] SpawnArg0. main.go sends that straight to Spawn, before the
// applet table, so it is no command anyone calls. Spawn, still root:
//
//  1. reads a spawnSpec (JSON) from fd 3 up to EOF;
//  2. sets each rlimit (setrlimit(2) on itself; a hard limit it may not
//     raise is clamped to its current one, as with prlimit);
//  3. setgroups, setgid, setuid (process-wide, every thread);
//  4. sets every signal to its default disposition and unblocks all
//     (signals.go);
//  5. execve's the program with exactly the spec's argv and environment.
//
// fd 4 is the report pipe: Spawn marks it close-on-exec first, so the
// slave reading EOF on it means the execve succeeded; otherwise Spawn
// writes one spawnFailure (JSON) there and exits 127. The process keeps
// the pid, process group, working directory and stdio bpslave gave the
// trampoline, so the rest of the exec path does not know the difference.
//
// The fast path — os.StartProcess straight from the slave, switching
// identity in the child — stays for every process whose limits are
// exactly the ones it would inherit. For the others the small trampoline
// (spawn_small.go: the same steps in a tiny static program, ~no cost
// over a direct start) is used where it runs; this Go one (a Go runtime
// start, ~3 ms) where it does not. Measured: BenchmarkStart, and
// bench/process/README.md.

// SpawnArg0 is the argv[0] under which the beo binary is the exec
// trampoline. main.go checks for it before anything else.
const SpawnArg0 = "beo-spawn"

// SpawnFailed is the trampoline's exit status when it could not exec.
const SpawnFailed = 127

// spawnSpec is what the trampoline does, sent on fd 3.
type spawnSpec struct {
	Path   string        `json:"path"`
	Argv   []string      `json:"argv"`
	Env    []string      `json:"env"`
	Rlim   []wire.Rlimit `json:"rlimits,omitempty"`
	UID    uint32        `json:"uid"`
	GID    uint32        `json:"gid"`
	Groups []uint32      `json:"groups"`
}

// spawnFailure is the trampoline's report on fd 4 when it cannot exec.
type spawnFailure struct {
	Step  string `json:"step"`            // "spec", "rlimit", "setgroups", "setgid", "setuid", "signals", "exec"
	Errno int    `json:"errno,omitempty"` // 0 when the failure is no system call's
	Msg   string `json:"msg"`
}

func (f spawnFailure) err() error {
	if f.Step == "exec" && f.Errno != 0 {
		return syscall.Errno(f.Errno) // "no such file or directory", like a failed fork/exec
	}
	if f.Errno != 0 {
		return fmt.Errorf("%s: %w", f.Msg, syscall.Errno(f.Errno))
	}
	return errors.New(f.Msg)
}

// Fds of the trampoline.
const (
	specFD   = 3
	reportFD = 4
)

// Spawn is the trampoline (see above). It returns only if it could not
// exec, after reporting why on fd 4; the caller then exits SpawnFailed.
func Spawn() error {
	report := os.NewFile(reportFD, "spawn-report")
	if _, err := unix.FcntlInt(reportFD, unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return fmt.Errorf("spawn: report pipe: %w", err)
	}
	fail := func(step string, err error) error {
		f := spawnFailure{Step: step, Msg: err.Error()}
		var en syscall.Errno
		if errors.As(err, &en) {
			f.Errno = int(en)
		}
		b, _ := json.Marshal(f)
		report.Write(b)
		return fmt.Errorf("spawn: %s: %w", step, err)
	}
	spec, err := readSpec(os.NewFile(specFD, "spawn-spec"))
	if err != nil {
		return fail("spec", err)
	}
	if err := limit(0, spec.Rlim); err != nil {
		return fail("rlimit", err)
	}
	if os.Geteuid() == 0 { // a non-root slave runs only its own uid: nothing to switch
		groups := make([]int, len(spec.Groups))
		for i, g := range spec.Groups {
			groups[i] = int(g)
		}
		if err := syscall.Setgroups(groups); err != nil {
			return fail("setgroups", fmt.Errorf("setgroups %v: %w", spec.Groups, err))
		}
		if err := syscall.Setgid(int(spec.GID)); err != nil {
			return fail("setgid", fmt.Errorf("setgid %d: %w", spec.GID, err))
		}
		if err := syscall.Setuid(int(spec.UID)); err != nil {
			return fail("setuid", fmt.Errorf("setuid %d: %w", spec.UID, err))
		}
	}
	if err := resetSignals(); err != nil {
		return fail("signals", err)
	}
	// Retry "text file busy" as startProcess does: a cache object another
	// exec has just written may be open for writing in a sibling for an
	// instant (golang.org/issue/22315).
	deadline := time.Now().Add(2 * time.Second)
	pause := time.Millisecond
	for {
		err = syscall.Exec(spec.Path, spec.Argv, spec.Env)
		if !errors.Is(err, syscall.ETXTBSY) || time.Now().After(deadline) {
			return fail("exec", err)
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// maxSpec bounds the spec the trampoline reads (the wire frame limit).
const maxSpec = wire.MaxFrame

// readSpec decodes a spawnSpec from r, up to EOF, and checks it.
func readSpec(r io.Reader) (spawnSpec, error) {
	var s spawnSpec
	b, err := io.ReadAll(io.LimitReader(r, maxSpec+1))
	if err != nil {
		return s, err
	}
	if len(b) > maxSpec {
		return s, errors.New("spec too large")
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decode spec: %w", err)
	}
	if s.Path == "" || len(s.Argv) == 0 {
		return s, errors.New("spec names no program")
	}
	return s, nil
}

// spawnTimeout bounds how long the slave waits for the trampoline's
// verdict; it only reads a pipe and makes a few system calls.
const spawnTimeout = 30 * time.Second

// spawn starts prog through the trampoline at exe (see above) with the
// stdio, directory and process group of attr, as cred with rlimits rl.
func spawn(exe, prog string, argv, env []string, cred wire.Cred, rl []wire.Rlimit, attr *os.ProcAttr) (*os.Process, error) {
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer specW.Close()
	repR, repW, err := os.Pipe()
	if err != nil {
		specR.Close()
		return nil, err
	}
	defer repR.Close()
	files := append(append([]*os.File{}, attr.Files[:3]...), specR, repW)
	p, err := os.StartProcess(exe, []string{SpawnArg0}, &os.ProcAttr{
		Dir:   attr.Dir,
		Env:   []string{"GOMAXPROCS=1", "GOGC=off"},
		Files: files,
		Sys:   trampolineSys(attr.Sys),
	})
	specR.Close()
	repW.Close()
	if err != nil {
		return nil, fmt.Errorf("start exec trampoline %s: %w", exe, err)
	}
	b, err := json.Marshal(spawnSpec{Path: prog, Argv: argv, Env: env, Rlim: rl,
		UID: cred.UID, GID: cred.GID, Groups: append([]uint32{}, cred.Groups...)})
	if err == nil {
		// The trampoline reads all of it; a failure shows as its report.
		specW.Write(b)
	}
	specW.Close()
	repR.SetReadDeadline(time.Now().Add(spawnTimeout))
	rep, rerr := io.ReadAll(io.LimitReader(repR, 64<<10))
	if rerr == nil && len(rep) == 0 {
		return p, nil // EOF: the program is running
	}
	unix.Kill(-p.Pid, unix.SIGKILL)
	p.Wait()
	if rerr != nil {
		return nil, fmt.Errorf("exec trampoline: %w", rerr)
	}
	var f spawnFailure
	if err := json.Unmarshal(rep, &f); err != nil {
		return nil, fmt.Errorf("exec trampoline: bad report %q", rep)
	}
	return nil, f.err()
}

// trampolineSys is the trampoline's own start: the session or process
// group of its own that the job's sys asks for (exec.go jobSys), and
// the job's cgroup from its birth (cgroup.go) if sys names one.
func trampolineSys(sys *syscall.SysProcAttr) *syscall.SysProcAttr {
	t := &syscall.SysProcAttr{Setpgid: true}
	if sys != nil {
		t.Setsid, t.Setpgid = sys.Setsid, !sys.Setsid
		t.UseCgroupFD, t.CgroupFD = sys.UseCgroupFD, sys.CgroupFD
	}
	return t
}
