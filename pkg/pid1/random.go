package pid1

import (
	"context"
	"errors"
	"log/slog"
	"runtime"

	urand "github.com/u-root/uio/rand"
	"golang.org/x/sys/unix"
)

// Early in boot the kernel's CRNG is not initialised yet, on machines
// without a CPU random instruction the kernel trusts (RDRAND) — QEMU's
// default CPU under TCG, older servers. Until it is, getrandom(2) blocks,
// and so does reading /dev/urandom (Linux ≥ 5.18 first tries to gather
// jitter entropy there): about a second, one bit per timer tick (256 at
// HZ=250), measured on the Debian kernel under TCG.
//
// Two consequences for init:
//
//   - the DHCP client's transaction IDs (insomniacslk/dhcp draws them from
//     u-root's uio/rand) must not wait for it: an xid only pairs replies
//     with requests, it protects nothing. xidsFromInsecureRandom makes
//     that reader use getrandom(GRND_INSECURE);
//   - bpslave's TLS handshake does need the CRNG. warmEntropy starts the
//     kernel's jitter collection at once, in the background, so the
//     second it takes passes while init loads modules, switches root and
//     asks for a lease, instead of after.

// warmEntropy blocks one thread, at nice 19, in getrandom(2) until the
// CRNG is ready; it returns at once. The kernel's collection loop
// busy-yields and credits a bit per timer tick; it needs to run only
// about once a tick to re-arm its timer, so at nice 19 it costs init
// little CPU and still finishes within a second or two. (At nice 0 it
// took half the CPU while init loaded modules; bpslave connected about
// 0.3 s later in 4 one-node boots.) If it is not done when bpslave's TLS
// needs it, bpslave's own getrandom finishes the job at nice 0.
func warmEntropy() {
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 19)
		var b [1]byte
		for {
			if _, err := unix.Getrandom(b[:], 0); !errors.Is(err, unix.EINTR) {
				return
			}
		}
	}()
}

// insecureReader is getrandom(GRND_INSECURE): never blocks, best-effort
// randomness before the CRNG is ready (Linux ≥ 5.6).
type insecureReader struct{}

func (insecureReader) Read(b []byte) (int, error) {
	return insecureReader{}.ReadContext(context.Background(), b)
}

func (insecureReader) ReadContext(ctx context.Context, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, err := unix.Getrandom(b[n:], unix.GRND_INSECURE)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

// xidsFromInsecureRandom points u-root's uio/rand reader — which the
// DHCP library uses only for transaction IDs in this process — at
// insecureReader, if the kernel has GRND_INSECURE. This changes a
// package variable of that library for the whole process: fine in PID 1,
// which uses it for nothing else; the services are other processes.
func xidsFromInsecureRandom(log *slog.Logger) {
	var b [4]byte
	if _, err := (insecureReader{}).Read(b[:]); err != nil {
		log.Warn("getrandom(GRND_INSECURE) unavailable; DHCP may wait for the kernel's entropy", "err", err)
		return
	}
	urand.Reader = insecureReader{}
}
