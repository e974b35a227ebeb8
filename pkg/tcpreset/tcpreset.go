// Package tcpreset ends the TCP connections of this network namespace to
// a host that will not answer any more: a compute node that lost power.
//
// A node that dies without a word (power lost, kernel hung) leaves every
// connection the master's processes have to it open: nothing ever
// arrives to close it, and a process that waits on one — MPICH's
// mpiexec waiting for the proxy it started there, ORTE's mpirun, a
// user's own client — waits until TCP gives up retransmitting, about a
// quarter of an hour, or forever for a connection with nothing to send.
// Once bpmaster has declared the node down (its heartbeat, pkg/master),
// Reset destroys those sockets (SOCK_DESTROY, as `ss -K dst ADDR` does):
// each owner sees ECONNABORTED at once and acts on it.
//
// It uses the kernel's sock_diag interface through vishvananda/netlink:
// a dump of the namespace's TCP sockets (IPv4, and IPv6 for dual-stack
// sockets whose peer is an IPv4-mapped address), then a SOCK_DESTROY of
// each one whose peer is the address — the IPv4 lookup finds a
// dual-stack socket too, as it does for the packets it receives. It
// needs CAP_NET_ADMIN and a kernel with CONFIG_INET_DIAG_DESTROY;
// without them it reports the error and changes nothing. Only IPv4 peers
// can be reset (nodes have IPv4 addresses); loopback addresses are
// refused: on a simulated cluster they are the master's own.
package tcpreset

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TCP states (include/net/tcp_states.h) with no peer to reset: a
// listener, and sockets already closed or waiting out TIME_WAIT.
const (
	stateTimeWait = 6
	stateClose    = 7
	stateListen   = 10
)

// Reset destroys this namespace's TCP sockets whose peer is addr and
// returns how many it destroyed.
func Reset(addr netip.Addr) (int, error) {
	addr = addr.Unmap()
	if !addr.Is4() || addr.IsLoopback() || addr.IsUnspecified() {
		return 0, fmt.Errorf("tcpreset: %v: not a remote IPv4 address", addr)
	}
	n := 0
	var errs []error
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := list(fam)
		if err != nil {
			return n, fmt.Errorf("tcpreset: list: %w", err)
		}
		for _, s := range socks {
			peer, ok := netip.AddrFromSlice(s.ID.Destination)
			if !ok || peer.Unmap() != addr {
				continue
			}
			switch s.State {
			case stateListen, stateTimeWait, stateClose:
				continue
			}
			local := &net.TCPAddr{IP: s.ID.Source, Port: int(s.ID.SourcePort)}
			remote := &net.TCPAddr{IP: s.ID.Destination, Port: int(s.ID.DestinationPort)}
			if err := netlink.SocketDestroy(local, remote); err != nil && !errors.Is(err, unix.ENOENT) { // gone already: fine
				errs = append(errs, fmt.Errorf("%v → %v: %w", local, remote, err))
				continue
			}
			n++
		}
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("tcpreset: destroy: %w", errors.Join(errs...))
	}
	return n, nil
}

// list dumps the namespace's TCP sockets of family. A dump the kernel
// says was interrupted (the table changed under it) is taken again, up
// to three times; then what it returned is used: a socket it missed was
// opened or closed while it ran.
func list(family uint8) ([]*netlink.Socket, error) {
	for try := 1; ; try++ {
		socks, err := netlink.SocketDiagTCP(family)
		if !errors.Is(err, netlink.ErrDumpInterrupted) || try == 3 {
			if errors.Is(err, netlink.ErrDumpInterrupted) {
				err = nil
			}
			return socks, err
		}
	}
}
