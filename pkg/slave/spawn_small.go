package slave

//go:generate ../ghost/mkimage.sh spawn_amd64.asm spawn_image_amd64.go slave spawnImage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/beo-cluster/beo/pkg/wire"
	"golang.org/x/sys/unix"
)

// The small exec trampoline.
//
// What the Go trampoline (spawn.go) does — rlimits set on itself, then
// the job's groups, gid and uid, every signal at its default and none
// blocked, then execve — takes a Go runtime start: ~3 ms here, several
// times that on an emulated node, for every job whose limits differ from
// the slave's, which on a real cluster is most jobs (a login's limits
// are rarely PID 1's). spawn_amd64.asm does the same in an 856-byte
// static program with no runtime at all, exec'd from a sealed memfd the
// slave makes once: the trampoline costs one more execve of one page.
// Same contract: the spec on fd 3 (binary here, see the .asm), fd 4 the
// report pipe, end of file on it meaning the exec succeeded; the process
// keeps the pid, process group, cgroup, directory and stdio the slave
// gave it. The Go trampoline remains where this one cannot run (not
// x86-64, no executable memfd).

// smallSteps name the small trampoline's failure steps.
var smallSteps = [...]string{1: "spec", 2: "rlimit", 3: "setgroups", 4: "setgid", 5: "setuid", 6: "exec"}

// smallSpawner holds the small trampoline's memfd.
type smallSpawner struct {
	once sync.Once
	fd   *os.File
	exe  string
	err  error
}

// program makes the memfd, once.
func (s *smallSpawner) program() (string, error) {
	s.once.Do(func() {
		if len(spawnImage) == 0 {
			s.err = errors.New("no small trampoline for this architecture")
			return
		}
		fd, err := unix.MemfdCreate("beo-spawn", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
		if errors.Is(err, unix.EINVAL) { // before Linux 6.3
			fd, err = unix.MemfdCreate("beo-spawn", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
		}
		if err != nil {
			s.err = fmt.Errorf("memfd: %w", err)
			return
		}
		f := os.NewFile(uintptr(fd), "beo-spawn")
		if _, err := f.Write(spawnImage); err != nil {
			f.Close()
			s.err = fmt.Errorf("memfd: %w", err)
			return
		}
		unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE)
		// Through this process's fd table: the child rearranges its own
		// descriptors before it exec's.
		s.fd, s.exe = f, fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd)
	})
	return s.exe, s.err
}

// smallSpec encodes the spec spawn_amd64.asm reads.
func smallSpec(cred wire.Cred, rl []wire.Rlimit, switchID bool) []byte {
	b := make([]byte, 0, 20+24*len(rl)+4*len(cred.Groups))
	var flags uint32
	if switchID {
		flags = 1
	}
	for _, v := range []uint32{uint32(len(rl)), uint32(len(cred.Groups)), cred.UID, cred.GID, flags} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	for _, l := range rl {
		b = binary.LittleEndian.AppendUint32(b, uint32(l.Resource))
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint64(b, l.Cur)
		b = binary.LittleEndian.AppendUint64(b, l.Max)
	}
	for _, g := range cred.Groups {
		b = binary.LittleEndian.AppendUint32(b, g)
	}
	return b
}

// spawnSmall starts prog through the small trampoline, as spawn does
// through the Go one; errNoSmall if it cannot run here.
func (s *smallSpawner) spawn(prog string, argv, env []string, cred wire.Cred, rl []wire.Rlimit, switchID bool, attr *os.ProcAttr) (*os.Process, error) {
	exe, err := s.program()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoSmall, err)
	}
	// Plain blocking pipes: the exchange is two short messages within
	// the time of one execve, not worth the netpoller's setup.
	var sp, rp [2]int
	if err := unix.Pipe2(sp[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	if err := unix.Pipe2(rp[:], unix.O_CLOEXEC); err != nil {
		unix.Close(sp[0])
		unix.Close(sp[1])
		return nil, err
	}
	specR, repW := os.NewFile(uintptr(sp[0]), "spec"), os.NewFile(uintptr(rp[1]), "report")
	defer unix.Close(rp[0])
	files := append(append([]*os.File{}, attr.Files[:3]...), specR, repW)
	p, err := os.StartProcess(exe, append([]string{prog}, argv...), &os.ProcAttr{
		Dir: attr.Dir, Env: env, Files: files, Sys: trampolineSys(attr.Sys),
	})
	specR.Close()
	repW.Close()
	if err != nil {
		unix.Close(sp[1])
		return nil, fmt.Errorf("%w: start %s: %w", errNoSmall, exe, err)
	}
	// The spec fits the pipe (64 KiB) unless the groups are thousands:
	// then the trampoline reads while this writes.
	writeAll(sp[1], smallSpec(cred, rl, switchID)) // a short write shows as its report
	unix.Close(sp[1])
	var rep [8]byte
	n, rerr := readFull(rp[0], rep[:])
	if n == 0 && rerr == nil {
		return p, nil // end of file: the program is running
	}
	unix.Kill(-p.Pid, unix.SIGKILL)
	p.Wait()
	if rerr != nil || n != len(rep) {
		return nil, fmt.Errorf("exec trampoline: short report (%d bytes): %v", n, rerr)
	}
	step, errno := binary.LittleEndian.Uint32(rep[:4]), binary.LittleEndian.Uint32(rep[4:])
	f := spawnFailure{Errno: int(errno), Step: "unknown"}
	if int(step) < len(smallSteps) && smallSteps[step] != "" {
		f.Step = smallSteps[step]
	}
	f.Msg = f.Step
	switch f.Step {
	case "setgroups":
		f.Msg = fmt.Sprintf("setgroups %v", cred.Groups)
	case "setgid":
		f.Msg = fmt.Sprintf("setgid %d", cred.GID)
	case "setuid":
		f.Msg = fmt.Sprintf("setuid %d", cred.UID)
	}
	return nil, f.err()
}

// errNoSmall marks a failure of the small trampoline itself, not of the
// job: the Go trampoline is tried instead.
var errNoSmall = errors.New("small exec trampoline unavailable")

// spawnAny starts prog through the small trampoline, or the Go one
// where the small one cannot run.
func (ss *session) spawnAny(prog string, ex *wire.Exec, env []string, attr *os.ProcAttr) (*os.Process, error) {
	p, err := ss.small.spawn(prog, ex.Argv, env, ex.Cred, ex.Rlim, ss.root, attr)
	if errors.Is(err, errNoSmall) {
		ss.smallWarn.Do(func() { ss.log.Warn("jobs with other limits start through the Go exec trampoline", "err", err) })
		return spawn(ss.cfg.SpawnExe, prog, ex.Argv, env, ex.Cred, ex.Rlim, attr)
	}
	return p, err
}

// writeAll writes b to fd, retrying interrupted and short writes.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// readFull reads into b until it is full or end of file (nil error).
func readFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Read(fd, b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, nil
		}
		n += m
	}
	return n, nil
}
