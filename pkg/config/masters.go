package config

import (
	"net/netip"
	"slices"
	"strings"
)

// This file parses masterorder, the multiple-masters directive (see the
// package doc, "Multiple masters").

// masterOrder is one masterorder line: nodes (nil = every node, the
// line's "-") have the masters addrs, primary first.
type masterOrder struct {
	line  int
	nodes NodeSet
	addrs []netip.Addr
}

// masterOrder parses `masterorder NODES|- MASTER…`.
func (p *parser) masterOrder(line int, args []string) {
	if !p.nargs(line, args, 2, -1, "masterorder NODES|- MASTER_IP...") {
		return
	}
	mo := masterOrder{line: line}
	if args[0] != "-" {
		set, err := ParseNodeSet(args[0])
		if err != nil {
			p.errorf(line, "masterorder: %v (want NODES like 0-31, or - for every node)", err)
			return
		}
		mo.nodes = set
	}
	for _, s := range args[1:] {
		a, err := parseIPv4(s)
		if err != nil {
			p.errorf(line, "masterorder: master %q: %v", s, err)
			return
		}
		if slices.Contains(mo.addrs, a) {
			p.errorf(line, "masterorder: master %s listed twice", a)
			return
		}
		mo.addrs = append(mo.addrs, a)
	}
	for _, prev := range p.c.masterOrders {
		if n, ok := overlap(prev.nodes, mo.nodes); ok {
			p.warnf(line, "masterorder: node %d already has its masters from line %d; that line wins for it", n, prev.line)
			break
		}
	}
	p.c.masterOrders = append(p.c.masterOrders, mo)
}

// overlap returns a node number both sets hold (nil = every node).
func overlap(a, b NodeSet) (int, bool) {
	switch {
	case a == nil && b == nil:
		return 0, true
	case a == nil:
		return b[0].Lo, true
	case b == nil:
		return a[0].Lo, true
	}
	for _, x := range a {
		for _, y := range b {
			if lo := max(x.Lo, y.Lo); lo <= min(x.Hi, y.Hi) {
				return lo, true
			}
		}
	}
	return 0, false
}

// checkMasterOrder reports masterorder masters inside the node or host
// ranges, and a file whose masterorder lines name none of this
// master's addresses (it would serve none of the nodes they cover).
func (p *parser) checkMasterOrder(masters []netip.Addr) {
	c := p.c
	named := false
	for _, mo := range c.masterOrders {
		for _, a := range mo.addrs {
			for _, r := range append([]Range{c.ipRange}, c.hostRanges...) {
				if r.IsValid() && r.Contains(a) {
					p.errorf(mo.line, "masterorder: master %s lies in the range %s of line %d, which is for nodes and devices", a, r, r.Line)
				}
			}
			named = named || slices.Contains(masters, a)
		}
	}
	if len(c.masterOrders) > 0 && len(masters) > 0 && !named {
		p.warnf(c.masterOrders[0].line, "masterorder: no line names this master (%s); it serves none of the nodes they cover", masters[0])
	}
}

// MasterOrder returns node n's masters, primary first, from the first
// masterorder line that covers it; nil when none does (the node has one
// master: whichever serves it).
func (c *Config) MasterOrder(n int) []netip.Addr {
	for _, mo := range c.masterOrders {
		if mo.nodes == nil || mo.nodes.Contains(n) {
			return slices.Clone(mo.addrs)
		}
	}
	return nil
}

// MasterRank says where the master at self stands for node n: 0 = its
// first master (or the node has no masterorder: every master is its
// only one), k = the master after k others in its order, -1 = not one
// of its masters.
func (c *Config) MasterRank(n int, self netip.Addr) int {
	order := c.MasterOrder(n)
	if order == nil {
		return 0
	}
	return slices.Index(order, self.Unmap())
}

// Masters returns every address a masterorder line names, in order of
// first appearance.
func (c *Config) Masters() []netip.Addr {
	var all []netip.Addr
	for _, mo := range c.masterOrders {
		for _, a := range mo.addrs {
			if !slices.Contains(all, a) {
				all = append(all, a)
			}
		}
	}
	return all
}

// MasterOrderLine is the line that gives every node the masters, the
// first primary: "masterorder - A B\n"; "" for fewer than two (one
// master needs no line).
func MasterOrderLine(masters ...netip.Addr) string {
	if len(masters) < 2 {
		return ""
	}
	var b strings.Builder
	b.WriteString("masterorder -")
	for _, a := range masters {
		b.WriteString(" " + a.String())
	}
	return b.String() + "\n"
}

// MultiMaster reports whether any masterorder line exists.
func (c *Config) MultiMaster() bool { return len(c.masterOrders) > 0 }
