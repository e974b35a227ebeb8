package config

import "net/netip"

// check runs the rules that need the whole file: node numbers and
// addresses, range overlaps, the master's addresses, and host addresses.
func (p *parser) check(opt Options) {
	p.checkNodes()
	p.checkRanges(opt.Masters)
	p.assignHosts(opt.Masters)
}

func (p *parser) checkNodes() {
	c := p.c
	if c.nodes >= 0 && c.ipRange.IsValid() && c.ipRange.Size() < uint64(c.nodes) {
		p.warnf(p.once["nodes"], "nodes %d exceeds the %d addresses of the iprange on line %d; only %d nodes are usable",
			c.nodes, c.ipRange.Size(), c.ipRange.Line, c.ipRange.Size())
	}
	for _, nl := range c.nodeLines {
		if c.nodes >= 0 && nl.num >= c.nodes {
			p.errorf(nl.line, "node %d: number not below nodes %d (line %d)", nl.num, c.nodes, p.once["nodes"])
		}
		if !c.ipRange.IsValid() {
			continue
		}
		if a, ok := addOffset(c.ipRange.From, uint64(nl.num)); !ok || !c.ipRange.Contains(a) {
			p.errorf(nl.line, "node %d: address beyond the end %s of the iprange on line %d", nl.num, c.ipRange.To, c.ipRange.Line)
		}
	}
	if len(c.nodeLines) > 0 && !c.ipRange.IsValid() {
		p.warnf(c.nodeLines[0].line, "no iprange line: nodes have no address")
	}
}

// checkRanges reports hostranges overlapping each other or the iprange, and
// any range containing a master address.
func (p *parser) checkRanges(masters []netip.Addr) {
	c := p.c
	for i, h := range c.hostRanges {
		for _, g := range c.hostRanges[:i] {
			if h.Overlaps(g) {
				p.errorf(h.Line, "hostrange %s overlaps the hostrange on line %d", h, g.Line)
			}
		}
		if h.Overlaps(c.ipRange) {
			p.errorf(h.Line, "hostrange %s overlaps the iprange on line %d", h, c.ipRange.Line)
		}
	}
	for _, r := range append([]Range{c.ipRange}, c.hostRanges...) {
		for _, m := range masters {
			if r.Contains(m) {
				what := "hostrange"
				if r == c.ipRange {
					what = "iprange"
				}
				p.errorf(r.Line, "%s %s contains the master's address %s", what, r, m.Unmap())
			}
		}
	}
}
