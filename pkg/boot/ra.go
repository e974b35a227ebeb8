package boot

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// This file answers IPv6 router solicitations with a router advertisement
// that says "no router here": lifetime 0, no prefix. iPXE (and any host)
// then stops soliciting at once instead of waiting out its timeouts.

// raResponder is a raw ICMPv6 socket that sees only router solicitations
// arriving on one interface.
type raResponder struct {
	ifi  *net.Interface
	conn *icmp.PacketConn
	p    *ipv6.PacketConn
}

var allRouters = net.ParseIP("ff02::2")
var allNodes = net.ParseIP("ff02::1")

func listenRA(iface string) (*raResponder, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("router advertisements: %w", err)
	}
	c, err := icmp.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, fmt.Errorf("router advertisements: %w", err)
	}
	r := &raResponder{ifi: ifi, conn: c, p: c.IPv6PacketConn()}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterSolicitation)
	for _, step := range []struct {
		what string
		err  func() error
	}{
		{"icmp filter", func() error { return r.p.SetICMPFilter(&f) }},
		{"join ff02::2", func() error { return r.p.JoinGroup(ifi, &net.IPAddr{IP: allRouters}) }},
		{"control messages", func() error { return r.p.SetControlMessage(ipv6.FlagInterface, true) }},
		{"multicast interface", func() error { return r.p.SetMulticastInterface(ifi) }},
		{"multicast hop limit", func() error { return r.p.SetMulticastHopLimit(255) }},
		{"hop limit", func() error { return r.p.SetHopLimit(255) }},
	} {
		if err := step.err(); err != nil {
			c.Close()
			return nil, fmt.Errorf("router advertisements on %s: %s: %w", iface, step.what, err)
		}
	}
	return r, nil
}

func (r *raResponder) Close() error { return r.conn.Close() }

// advertisement returns the ICMPv6 router advertisement for hw: current
// hop limit unspecified, no flags, router lifetime 0, reachable time and
// retransmit timer unspecified, and the source link-layer address option.
// The kernel fills in the checksum.
func advertisement(hw net.HardwareAddr) ([]byte, error) {
	body := make([]byte, 12, 12+2+len(hw)+8)
	if len(hw) > 0 {
		opt := append([]byte{1, 0}, hw...) // type 1: source link-layer address
		for len(opt)%8 != 0 {
			opt = append(opt, 0)
		}
		opt[1] = byte(len(opt) / 8)
		body = append(body, opt...)
	}
	m := icmp.Message{Type: ipv6.ICMPTypeRouterAdvertisement, Body: &icmp.RawBody{Data: body}}
	return m.Marshal(nil)
}

// isSolicitation reports whether b is an ICMPv6 router solicitation.
func isSolicitation(b []byte) bool {
	m, err := icmp.ParseMessage(58, b) // 58: ICMPv6
	return err == nil && m.Type == ipv6.ICMPTypeRouterSolicitation && m.Code == 0
}

// serve answers each solicitation on the interface with a multicast
// advertisement to all nodes, until ctx ends.
func (r *raResponder) serve(ctx context.Context, log *slog.Logger) error {
	ra, err := advertisement(r.ifi.HardwareAddr)
	if err != nil {
		return fmt.Errorf("boot: router advertisement: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { r.conn.Close() })
	defer stop()
	buf := make([]byte, 1500)
	dst := &net.IPAddr{IP: allNodes, Zone: r.ifi.Name}
	cm := &ipv6.ControlMessage{HopLimit: 255, IfIndex: r.ifi.Index}
	for {
		n, rcm, src, err := r.p.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("boot: router solicitations: %w", err)
		}
		if rcm != nil && rcm.IfIndex != r.ifi.Index || !isSolicitation(buf[:n]) {
			continue
		}
		if _, err := r.p.WriteTo(ra, cm, dst); err != nil {
			log.Warn("router advertisement", "to", dst, "solicited by", src, "err", err)
		}
	}
}
