package config

import (
	"fmt"
	"net/netip"
	"slices"
)

// This file checks that the ranges and MACs a file gives can be used on
// a cluster network at all.

// reservedBlock is a block of IPv4 addresses no node or host device can
// have (RFC 6890).
type reservedBlock struct {
	prefix netip.Prefix
	what   string
}

var reservedBlocks = []reservedBlock{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (\"this network\", 0.0.0.0/8) addresses, which no host may have"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local addresses (169.254.0.0/16), which hosts pick for themselves and routers never forward"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast addresses (224.0.0.0/4), which name groups, not hosts"},
	{netip.MustParsePrefix("255.255.255.255/32"), "the limited broadcast address 255.255.255.255"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved addresses (240.0.0.0/4), which hosts refuse"},
}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// prefixRange is the inclusive range of addresses of a prefix.
func prefixRange(p netip.Prefix) Range {
	p = p.Masked()
	last, _ := addOffset(p.Addr(), uint64(1)<<(32-p.Bits())-1)
	return Range{From: p.Addr(), To: last}
}

// checkRangeAddrs reports ranges holding addresses no node or device can
// have, and a range holding the network or broadcast address of the
// master's cluster network (see Options.Networks).
//
// A loopback range is what `beo sim` runs a simulated cluster on (every
// node a process of this host at its own 127.x address), so it is only a
// warning — unless a master address is known and is not a loopback
// one: then the nodes are real machines, which cannot have one.
func (p *parser) checkRangeAddrs(opt Options) {
	c := p.c
	realMaster := slices.IndexFunc(opt.Masters, func(a netip.Addr) bool { return !a.Unmap().IsLoopback() })
	for i, r := range append([]Range{c.ipRange}, c.hostRanges...) {
		if !r.IsValid() {
			continue
		}
		what := "hostrange"
		if i == 0 {
			what = "iprange"
		}
		bad := false
		for _, b := range reservedBlocks {
			if r.Overlaps(prefixRange(b.prefix)) {
				p.errorf(r.Line, "%s %s holds %s", what, r, b.what)
				bad = true
				break
			}
		}
		if bad {
			continue
		}
		if r.Overlaps(prefixRange(loopback)) {
			if realMaster >= 0 {
				p.errorf(r.Line, "%s %s holds loopback addresses (127.0.0.0/8), which only this host has; the master's address is %s", what, r, opt.Masters[realMaster].Unmap())
			} else {
				p.warnf(r.Line, "%s %s holds loopback addresses (127.0.0.0/8): fine for a simulated cluster (beo sim), but no real node can have one", what, r)
			}
			continue
		}
		p.checkNetworkEnds(what, r, opt.Networks)
	}
}

// checkNetworkEnds reports a range holding the network or broadcast
// address of one of the cluster networks; without networks, one holding
// an address a /24 would have as either (a warning: the network may be
// wider).
func (p *parser) checkNetworkEnds(what string, r Range, networks []netip.Prefix) {
	known := false
	for _, n := range networks {
		if n.Addr().Is4In6() {
			n = netip.PrefixFrom(n.Addr().Unmap(), n.Bits()-96)
		}
		if !n.IsValid() || !n.Addr().Is4() {
			continue
		}
		nr := prefixRange(n)
		if !r.Overlaps(nr) {
			continue
		}
		known = true
		if n.Bits() >= 31 { // RFC 3021: no network or broadcast address
			continue
		}
		for _, a := range []struct {
			addr netip.Addr
			name string
		}{{nr.From, "network"}, {nr.To, "broadcast"}} {
			if r.Contains(a.addr) {
				p.errorf(r.Line, "%s %s holds %s, the %s address of the cluster network %s", what, r, a.addr, a.name, n.Masked())
			}
		}
	}
	if known || len(networks) > 0 {
		return
	}
	for a := r.From; r.Contains(a); {
		b := a.As4()
		switch b[3] {
		case 0, 255:
			p.warnf(r.Line, "%s %s holds %s, the network or broadcast address of a /24: fine only if the cluster network is wider", what, r, a)
			return
		}
		next, ok := addOffset(a, uint64(255-b[3])) // the next x.x.x.255
		if !ok {
			return
		}
		a = next
	}
}

// macProblem says why no NIC can have m ("" when one can): the zero
// address, the broadcast address, or a multicast (group) address — the
// low bit of the first octet set.
func macProblem(m MAC) string {
	switch {
	case m == MAC{}:
		return "is the zero address, which no NIC has"
	case m == MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}:
		return "is the broadcast address, which no NIC has"
	case m[0]&1 != 0:
		return "is a multicast (group) address (the first octet is odd), which no NIC sends from"
	}
	return ""
}

// checkMACs reports MACs no NIC can have: an error on a node or host
// line (the boot server would never hear from that machine), which is
// then left out; a warning on an ignore line (it can never match).
func (p *parser) checkMACs(line int, directive string, macs []MAC) bool {
	ok := true
	for _, m := range macs {
		msg := macProblem(m)
		switch {
		case msg == "":
		case directive == "ignore":
			p.warnf(line, "ignore: MAC %s %s: the line can never match", m, msg)
		default:
			p.errorf(line, "%s: MAC %s %s", directive, m, msg)
			ok = false
		}
	}
	return ok
}

// describeNodes is "nodes 0-31" or "no node" for NodeCount n.
func describeNodes(n int) string {
	switch n {
	case 0:
		return "no node"
	case 1:
		return "node 0"
	}
	return fmt.Sprintf("nodes 0-%d", n-1)
}
