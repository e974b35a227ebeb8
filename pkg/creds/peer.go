package creds

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/beo-cluster/beo/pkg/wire"
	"golang.org/x/sys/unix"
)

// Peer returns who is at the other end of unix socket c, as the kernel
// reports it (SO_PEERCRED: uid, gid, pid) with the supplementary groups
// read from /proc/PID/status at this moment (SO_PEERCRED has none): the
// identity bpmaster takes for a local client, and bpslave for a client
// on its node.
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
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cr, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return wire.Cred{}, 0, err
	}
	if serr != nil {
		return wire.Cred{}, 0, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	pid := int(cr.Pid)
	return wire.Cred{UID: cr.Uid, GID: cr.Gid, Groups: procGroups(pid)}, pid, nil
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
