package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/beo-cluster/beo/pkg/config"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/insomniacslk/dhcp/iana"
	"golang.org/x/sys/unix"
)

// This file is the DHCP side: the socket, who a MAC is, and the answer.

// iPXE's encapsulated options (175) with no-pxedhcp (176) = 1: do not
// wait for a ProxyDHCP offer.
var ipxeNoProxyDHCP = []byte{176, 1, 1}

// PXE vendor options (43) with PXE_DISCOVERY_CONTROL (6) = 8: boot the
// file named in the offer, no boot-server discovery; then the end option.
var pxeDiscoveryControl = []byte{6, 1, 8, 255}

const optIPXEEncap dhcpv4.GenericOptionCode = 175

// The DHCP ports.
const (
	dhcpClient = 68
	dhcpServer = 67
)

// listenDHCP binds a UDP socket to port on iface alone, allowing
// broadcast. Unlike server4.NewIPv4UDPConn it sets neither SO_REUSEADDR
// nor SO_REUSEPORT, so a second DHCP server on the interface cannot bind.
func listenDHCP(iface string, port int) (*net.UDPConn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("dhcp socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "dhcp")
	defer f.Close() // FilePacketConn dups it
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
		return nil, fmt.Errorf("dhcp socket: broadcast: %w", err)
	}
	if err := unix.BindToDevice(fd, iface); err != nil {
		return nil, fmt.Errorf("dhcp socket: bind to %s: %w", iface, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port}); err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("interface %s: another DHCP server already listens on port %d", iface, port)
		}
		return nil, fmt.Errorf("dhcp socket: bind port %d: %w", port, err)
	}
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("dhcp socket: %w", err)
	}
	return pc.(*net.UDPConn), nil
}

// serveDHCP answers DHCP on conn until ctx ends (server4 runs each
// request's handler in its own goroutine).
func (s *Server) serveDHCP(ctx context.Context, conn *net.UDPConn) error {
	srv, err := server4.NewServer("", nil, s.handleDHCP, server4.WithConn(conn))
	if err != nil {
		return fmt.Errorf("boot: dhcp: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	err = srv.Serve()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("boot: dhcp: %w", err)
}

func (s *Server) handleDHCP(conn net.PacketConn, peer net.Addr, req *dhcpv4.DHCPv4) {
	if !dhcpPort(peer) {
		s.log.Warn("dhcp: dropped a request not from a DHCP client's or relay's port (a user's process?)", "from", peer, "mac", req.ClientHWAddr)
		return
	}
	resp, dst := s.Answer(req)
	if resp == nil {
		return
	}
	if _, err := conn.WriteTo(resp.ToBytes(), dst); err != nil {
		s.log.Warn("dhcp reply", "mac", req.ClientHWAddr, "to", dst, "err", err)
	}
}

// dhcpPort reports whether a request came from a DHCP client's port
// (68) or a relay agent's (67). Both are privileged: a user's process —
// a job on a node — can send a DHCP packet from any other port, naming
// any MAC, and must not make the master assign node numbers to made-up
// MACs (nodeassign append), or believe a node is network-booting (its
// key pin renewed, OnBoot).
func dhcpPort(peer net.Addr) bool {
	u, ok := peer.(*net.UDPAddr)
	return ok && (u.Port == dhcpv4.ClientPort || u.Port == dhcpv4.ServerPort)
}

// clientKind says which boot stage sent a request.
type clientKind int

const (
	plainClient clientKind = iota // an OS: the node's init, a switch
	pxeClient                     // firmware PXE: chain to iPXE
	ipxeClient                    // iPXE: the script over HTTP
)

func (k clientKind) String() string { return [...]string{"plain", "pxe", "ipxe"}[k] }

// classify tells firmware PXE from iPXE (option 77 "iPXE", raw as iPXE
// sends it or RFC 3004, or option 175) from anything else.
func classify(req *dhcpv4.DHCPv4) clientKind {
	uc := req.Options.Get(dhcpv4.OptionUserClassInformation)
	if bytes.Equal(uc, []byte("iPXE")) || req.Options.Has(optIPXEEncap) {
		return ipxeClient
	}
	if len(uc) > 0 {
		for _, c := range req.UserClass() {
			if c == "iPXE" {
				return ipxeClient
			}
		}
	}
	if strings.HasPrefix(req.ClassIdentifier(), "PXEClient") {
		return pxeClient
	}
	return plainClient
}

// who is what the config makes of a MAC.
type who struct {
	mac  config.MAC
	kind config.Kind // KindNode or KindHost
	node int
	addr netip.Addr
	name string // first nodename, or the host's first name
}

func (w who) String() string {
	if w.kind == config.KindNode {
		return "node " + strconv.Itoa(w.node)
	}
	return "host " + w.mac.String()
}

// identify says who m is; false means no answer (ignored, unknown,
// or no address). assign allows making an unknown MAC a node.
func (s *Server) identify(m config.MAC, assign bool) (who, bool) {
	cfg := s.Config()
	mt := cfg.Lookup(m)
	if mt.Kind == config.KindUnknown && assign {
		var err error
		if mt, err = s.assign(m); err != nil {
			s.log.Error("new MAC", "mac", m, "err", err)
			return who{}, false
		}
		cfg = s.Config()
	}
	w := who{mac: m, kind: mt.Kind}
	switch mt.Kind {
	case config.KindNode:
		w.node = mt.Node
		a, ok := cfg.NodeAddr(mt.Node)
		if !ok {
			s.log.Warn("node has no address in the iprange; not answered", "node", mt.Node, "mac", m)
			return who{}, false
		}
		w.addr = a
		// Its host name: its first nodename, else .N (SPEC §9).
		w.name = "." + strconv.Itoa(mt.Node)
		if spec, ok := cfg.Node(mt.Node); ok && len(spec.Names) > 0 {
			w.name = spec.Names[0].Name
		}
		return w, true
	case config.KindHost:
		w.addr = mt.Host.Addr
		if len(mt.Host.Names) > 0 {
			w.name = mt.Host.Names[0]
		}
		return w, w.addr.IsValid()
	}
	return who{}, false
}

// assign makes the unknown MAC m a node under the config's nodeassign
// mode; when no node number is left, an ignored MAC (an `ignore` line);
// under nodeassign off it records m in the unknown-addresses file.
func (s *Server) assign(m config.MAC) (config.Match, error) {
	var got config.Match
	var added, full bool
	err := s.edit("new MAC "+m.String(), func(f *config.File) (bool, error) {
		added, full = false, false
		cfg := f.Config()
		if got = cfg.Lookup(m); got.Kind != config.KindUnknown {
			return false, nil // someone (another packet, an admin) was first
		}
		n, ok := cfg.NextNode()
		switch {
		case !ok && cfg.NodeAssign() == config.AssignOff:
			return false, nil
		case !ok && len(cfg.Ignored()) >= maxRecorded:
			full = true
			return false, nil
		case !ok:
			if err := f.AppendIgnore(m); err != nil {
				return false, err
			}
		default:
			if err := f.AppendNode(n, m); err != nil {
				return false, err
			}
		}
		got, added = f.Config().Lookup(m), true
		return true, nil
	})
	if err != nil {
		return config.Match{}, err
	}
	switch {
	case added && got.Kind == config.KindNode:
		s.log.Info("new node", "node", got.Node, "mac", m)
		s.dialog(who{mac: m, kind: config.KindNode, node: got.Node}, "%s added to the config as node %d", m, got.Node)
	case added:
		s.log.Info("new MAC ignored: no node number left; ignore line added to the config", "mac", m, "line", got.Line)
	case full:
		s.log.Warn("new MAC ignored and not recorded: no node number left, and the config already has the most ignore lines beoserv adds (a flood of made-up MACs?)", "mac", m, "max", maxRecorded)
	case got.Kind == config.KindUnknown:
		fresh, err := s.unknown.Add(m)
		if errors.Is(err, errListFull) {
			s.log.Warn("unknown MAC not answered and not recorded: the unknown-addresses file is full (a flood of made-up MACs?)", "mac", m, "file", s.unknown.path, "max", maxRecorded)
			return got, nil
		}
		if err != nil {
			return got, err
		}
		if fresh {
			s.log.Info("unknown MAC recorded; not answered", "mac", m, "why", "nodeassign off", "file", s.unknown.path)
		}
	}
	return got, nil
}

// Answer computes the reply to one DHCP request and where to send it; nil
// means no reply. It appends to the node's log, and may add a node line
// to the config file (see the package doc).
func (s *Server) Answer(req *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	if req.OpCode != dhcpv4.OpcodeBootRequest || req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6 {
		return nil, nil
	}
	var m config.MAC
	copy(m[:], req.ClientHWAddr)
	mt := req.MessageType()
	server := s.addr.Addr()
	switch mt {
	case dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeInform:
	case dhcpv4.MessageTypeRequest:
		if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(server.AsSlice()) {
			return nil, nil // the client chose another server
		}
	case dhcpv4.MessageTypeDecline, dhcpv4.MessageTypeRelease:
		if w, ok := s.identify(m, false); ok {
			s.dialog(w, "%s %s ciaddr=%s requested=%s", mt, m, req.ClientIPAddr, req.RequestedIPAddress())
			if mt == dhcpv4.MessageTypeDecline {
				s.log.Warn("client declined its address: is another host using it?", "mac", m, "addr", w.addr)
			}
		}
		return nil, nil
	default:
		return nil, nil
	}
	w, ok := s.identify(m, true)
	if !ok || w.kind == config.KindNode && !s.answers(s.Config(), w, mt.String()) {
		return nil, nil
	}
	kind := classify(req)
	reply := dhcpv4.MessageTypeOffer
	switch mt {
	case dhcpv4.MessageTypeRequest:
		reply = dhcpv4.MessageTypeAck
		want := req.RequestedIPAddress()
		if want == nil || want.IsUnspecified() {
			want = req.ClientIPAddr
		}
		if want == nil || !want.Equal(w.addr.AsSlice()) {
			return s.nak(req, w, want)
		}
	case dhcpv4.MessageTypeInform:
		reply = dhcpv4.MessageTypeAck
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(reply),
		dhcpv4.WithServerIP(server.AsSlice()),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server.AsSlice())),
		dhcpv4.WithNetmask(net.CIDRMask(s.addr.Bits(), 32)),
		dhcpv4.WithGeneric(optIPXEEncap, ipxeNoProxyDHCP),
	}
	mods = append(mods, s.forwardOptions()...)
	if mt != dhcpv4.MessageTypeInform {
		mods = append(mods,
			dhcpv4.WithYourIP(w.addr.AsSlice()),
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(s.o.LeaseTime)))
	}
	if w.name != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(w.name)))
	}
	file := s.bootFile(req, kind, w)
	if file != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptBootFileName(file)))
	}
	if kind == pxeClient {
		mods = append(mods,
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient")),
			dhcpv4.WithGeneric(dhcpv4.OptionVendorSpecificInformation, pxeDiscoveryControl))
	}
	resp, err := dhcpv4.NewReplyFromRequest(req, mods...)
	if err != nil {
		s.log.Error("dhcp reply", "mac", m, "err", err)
		return nil, nil
	}
	resp.BootFileName = file
	s.dialog(w, "%s %s from %s (%s) → %s %s file=%q", mt, m, kind, req.ClassIdentifier(), reply, w.addr, file)
	if w.kind == config.KindNode && mt != dhcpv4.MessageTypeInform && s.o.OnBoot != nil {
		s.o.OnBoot(w.node) // network-booting (see Options.OnBoot)
	}
	return resp, destination(req, resp)
}

// nak refuses a request for an address that is not the MAC's.
func (s *Server) nak(req *dhcpv4.DHCPv4, w who, want net.IP) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	server := s.addr.Addr().AsSlice()
	resp, err := dhcpv4.NewReplyFromRequest(req,
		dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server)),
		dhcpv4.WithOption(dhcpv4.OptMessage(fmt.Sprintf("%s is not yours; yours is %s", want, w.addr))))
	if err != nil {
		s.log.Error("dhcp nak", "mac", w.mac, "err", err)
		return nil, nil
	}
	s.dialog(w, "REQUEST %s for %s → NAK (its address is %s)", w.mac, want, w.addr)
	return resp, destination(req, resp)
}

// destination is where RFC 2131 §4.1 sends a reply: the relay, the
// client's own address, or broadcast on the interface.
func destination(req, resp *dhcpv4.DHCPv4) *net.UDPAddr {
	switch {
	case req.GatewayIPAddr != nil && !req.GatewayIPAddr.IsUnspecified():
		return &net.UDPAddr{IP: req.GatewayIPAddr, Port: dhcpServer}
	case resp.MessageType() == dhcpv4.MessageTypeNak:
		return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpClient}
	case req.ClientIPAddr != nil && !req.ClientIPAddr.IsUnspecified():
		return &net.UDPAddr{IP: req.ClientIPAddr, Port: dhcpClient}
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpClient}
}

// dialog writes one line of w's boot dialog: the node's log for a node,
// the daemon log for a host device.
func (s *Server) dialog(w who, format string, args ...any) {
	if w.kind != config.KindNode {
		s.log.Info(fmt.Sprintf(format, args...), "host", w.mac)
		return
	}
	if err := s.logs.Printf(w.node, format, args...); err != nil {
		s.log.Warn("node log", "err", err)
	}
}
