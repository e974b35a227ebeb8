package creds

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"github.com/beo-cluster/beo/pkg/wire"
	"golang.org/x/sys/unix"
)

// Peer returns who is at the other end of unix socket c, as the kernel
// reports it: SO_PEERCRED (uid, gid, pid) and SO_PEERGROUPS (the
// supplementary groups), both as they were when the peer connected. The
// identity bpmaster takes for a local client, and bpslave for a client
// on its node. (Before Linux 4.13, which has no SO_PEERGROUPS, the
// groups are read from /proc/PID/status instead, at this moment.)
func Peer(c net.Conn) (wire.Cred, int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return wire.Cred{}, 0, errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return wire.Cred{}, 0, err
	}
	var cr *unix.Ucred
	var gs []uint32
	var serr, gerr error
	if err := raw.Control(func(fd uintptr) {
		cr, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		gs, gerr = peerGroups(int(fd))
	}); err != nil {
		return wire.Cred{}, 0, err
	}
	if serr != nil {
		return wire.Cred{}, 0, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	pid := int(cr.Pid)
	if gerr != nil {
		gs = procGroups(pid)
	}
	return wire.Cred{UID: cr.Uid, GID: cr.Gid, Groups: gs}, pid, nil
}

// peerGroups returns the supplementary groups the peer of unix socket fd
// had when it connected (SO_PEERGROUPS); nil for none.
func peerGroups(fd int) ([]uint32, error) {
	gs := make([]uint32, 64)
	for {
		n := uint32(4 * len(gs)) // socklen_t: bytes
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&gs[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case e == 0 && n == 0:
			return nil, nil
		case e == 0:
			return gs[:n/4], nil
		case e == unix.ERANGE && int(n/4) > len(gs): // n is the size needed
			gs = make([]uint32, n/4)
		default:
			return nil, fmt.Errorf("SO_PEERGROUPS: %w", e)
		}
	}
}

// procGroups reads the supplementary groups of pid.
func procGroups(pid int) []uint32 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Groups:"); ok {
			var gs []uint32
			for _, g := range strings.Fields(rest) {
				if v, err := strconv.ParseUint(g, 10, 32); err == nil {
					gs = append(gs, uint32(v))
				}
			}
			return gs
		}
	}
	return nil
}
