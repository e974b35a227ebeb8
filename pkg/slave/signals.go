package slave

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The signals a job starts with.
//
// Every process bpslave starts begins with every signal at its default
// disposition and none blocked, whatever bpslave itself inherited — as
// the commands of a login shell do. A bpslave started with SIGINT
// ignored (from a script's `cmd &`, or SIGHUP under nohup) would
// otherwise pass the ignore on to every job: `bpsh 0 sleep 300` would
// shrug off Ctrl-C.
//
// Go resets, between fork and exec, only the signals its runtime
// handles. A signal ignored when the process started stays ignored in
// every child if the runtime left it alone: SIGHUP and SIGINT (the
// runtime keeps an inherited ignore on purpose), SIGTSTP, SIGTTIN,
// SIGTTOU (handled only on request), and 32 and 33 (glibc's). And a
// child starts with the signal mask the process started with. So:
//
//   - Run (jobSignals) has the runtime handle every signal it finds
//     ignored, with signal.Notify on a channel nobody reads: bpslave
//     goes on ignoring it, and the runtime resets it in each child. The
//     direct start (os.StartProcess) keeps its cost.
//   - An ignored signal the runtime cannot take over (32, 33), or a
//     signal blocked when bpslave started, sends every job through the
//     exec trampoline (spawn.go) instead.
//   - The trampoline, after switching identity and just before its
//     execve, sets every signal but SIGKILL and SIGSTOP to SIG_DFL and
//     clears its mask (resetSignals).
//
// What stays out of reach: a signal the Go runtime insists on receiving
// (SIGSEGV, SIGBUS, SIGURG, …) blocked when bpslave started is unblocked
// on every thread, so jobSignals cannot see it, and a direct child
// inherits it blocked. No shell starts a daemon that way.

// jobSignals prepares this process's signal dispositions for the jobs
// it starts directly (see above). It reports whether they then start
// with every signal at its default and none blocked; if not, every job
// must start through the trampoline.
func jobSignals() (direct bool, err error) {
	ign, blk, err := threadSignals()
	if err != nil {
		return false, err
	}
	if ign != 0 {
		sink := make(chan os.Signal, 1) // never read: the signals stay ignored
		for sig := 1; sig <= 64; sig++ {
			if ign&(1<<(sig-1)) != 0 {
				signal.Notify(sink, syscall.Signal(sig))
			}
		}
		if ign, _, err = threadSignals(); err != nil {
			return false, err
		}
	}
	return ign == 0 && blk == 0, nil
}

// threadSignals returns the calling thread's ignored (process-wide) and
// blocked signals, bit N-1 for signal N.
func threadSignals() (ign, blk uint64, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return 0, 0, err
	}
	return parseSignals(b)
}

// parseSignals reads SigIgn and SigBlk from a /proc status file.
func parseSignals(status []byte) (ign, blk uint64, err error) {
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		var dst *uint64
		switch {
		case !ok:
			continue
		case string(k) == "SigIgn":
			dst = &ign
		case string(k) == "SigBlk":
			dst = &blk
		default:
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", k, err)
		}
		*dst = n
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("no SigIgn and SigBlk in the status file")
	}
	return ign, blk, nil
}

// resetSignals sets every signal but SIGKILL and SIGSTOP to SIG_DFL and
// unblocks all of them on the calling thread, which it locks: the
// trampoline's last step before execve, which keeps ignored signals and
// the calling thread's mask. After it the Go runtime gets none of its
// own signals, so nothing but the execve may follow — in particular no
// setuid, which signals every thread.
func resetSignals() error {
	runtime.LockOSThread() // never unlocked: the execve replaces the process
	var dfl [64]byte       // a kernel struct sigaction of zeros: SIG_DFL, no flags, empty mask
	for sig := 1; sig <= 64; sig++ {
		if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			continue
		}
		_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), 0, sigsetSize, 0, 0)
		if e != 0 {
			return fmt.Errorf("signal %d: %w", sig, e)
		}
	}
	var none unix.Sigset_t
	return unix.PthreadSigmask(unix.SIG_SETMASK, &none, nil)
}

// sigsetSize is the kernel's sigset_t size rt_sigaction wants: 64 signals.
const sigsetSize = 8
