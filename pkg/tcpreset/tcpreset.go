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
// The request goes over NETLINK_SOCK_DIAG: a dump of the namespace's
// TCP sockets (SOCK_DIAG_BY_FAMILY, AF_INET and AF_INET6, which holds
// IPv4-mapped peers too), then a SOCK_DESTROY naming each socket whose
// peer is the address, by its full id and cookie. It needs CAP_NET_ADMIN
// and a kernel with CONFIG_INET_DIAG_DESTROY; without them it reports
// the error and changes nothing. Loopback addresses are refused: on a
// simulated cluster they are the master's own.
//
// Byte layout (host order unless marked big-endian), after the 16-byte
// nlmsghdr:
//
//	inet_diag_req_v2  family u8, protocol u8, ext u8, pad u8, states u32, inet_diag_sockid
//	inet_diag_sockid  sport be16, dport be16, src [16]byte, dst [16]byte, if u32, cookie [2]u32
//	inet_diag_msg     family u8, state u8, timer u8, retrans u8, inet_diag_sockid, expires, rqueue, wqueue, uid, inode u32
package tcpreset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	sockidLen  = 48
	reqLen     = 8 + sockidLen
	diagMsgLen = 4 + sockidLen + 20
	// allStates is every TCP state but LISTEN (bit 10): a listener has
	// no peer.
	allStates = 0xffffffff &^ (1 << 10)
)

// Reset destroys this namespace's TCP sockets whose peer is addr and
// returns how many it destroyed.
func Reset(addr netip.Addr) (int, error) {
	addr = addr.Unmap()
	if !addr.IsValid() || addr.IsLoopback() || addr.IsUnspecified() {
		return 0, fmt.Errorf("tcpreset: %v: not a remote address", addr)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_INET_DIAG)
	if err != nil {
		return 0, fmt.Errorf("tcpreset: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("tcpreset: %w", err)
	}
	var ids [][]byte
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		found, err := dump(fd, fam, addr)
		if err != nil {
			return 0, err
		}
		ids = append(ids, found...)
	}
	n := 0
	var errs []error
	for _, id := range ids {
		if err := destroy(fd, id); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// request is a netlink message: the header, then an inet_diag_req_v2
// for family with the socket id (nil: all zero).
func request(typ uint16, flags uint16, family uint8, id []byte) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+reqLen)
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], flags)
	binary.NativeEndian.PutUint32(b[8:], 1)
	r := b[unix.NLMSG_HDRLEN:]
	r[0], r[1] = family, unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(r[4:], allStates)
	copy(r[8:], id)
	return b
}

// dump lists the sockets of family whose peer is addr, as the family
// byte followed by their inet_diag_sockid.
func dump(fd int, family uint8, addr netip.Addr) ([][]byte, error) {
	if err := unix.Sendto(fd, request(unix.SOCK_DIAG_BY_FAMILY, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, family, nil), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("tcpreset: dump: %w", err)
	}
	var out [][]byte
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("tcpreset: dump: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("tcpreset: dump: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				return nil, fmt.Errorf("tcpreset: dump: %w", nlError(m.Data))
			}
			if len(m.Data) < diagMsgLen {
				continue
			}
			if peer(m.Data[0], m.Data[4:4+sockidLen]) == addr {
				out = append(out, append([]byte{m.Data[0]}, m.Data[4:4+sockidLen]...))
			}
		}
	}
}

// peer is the destination address of a socket id of family.
func peer(family uint8, id []byte) netip.Addr {
	dst := id[20:36]
	if family == unix.AF_INET {
		return netip.AddrFrom4([4]byte(dst[:4]))
	}
	return netip.AddrFrom16([16]byte(dst)).Unmap()
}

// destroy sends SOCK_DESTROY for one socket (family byte + sockid) and
// reads the acknowledgement.
func destroy(fd int, famID []byte) error {
	if err := unix.Sendto(fd, request(unix.SOCK_DESTROY, unix.NLM_F_REQUEST|unix.NLM_F_ACK, famID[0], famID[1:]), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("tcpreset: destroy: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return fmt.Errorf("tcpreset: destroy: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return fmt.Errorf("tcpreset: destroy: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR {
			if err := nlError(m.Data); err != nil && !errors.Is(err, unix.ENOENT) { // gone already: fine
				return fmt.Errorf("tcpreset: destroy: %w", err)
			}
		}
	}
	return nil
}

// nlError is the errno of an NLMSG_ERROR payload (nil for an ack).
func nlError(data []byte) error {
	if len(data) < 4 {
		return errors.New("short netlink error")
	}
	if e := int32(binary.NativeEndian.Uint32(data)); e != 0 {
		return os.NewSyscallError("netlink", unix.Errno(-e))
	}
	return nil
}
