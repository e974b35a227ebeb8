package config

import "net/netip"

// check runs the rules that need the whole file: node numbers and
// addresses, range overlaps and unusable addresses, the master's
// addresses, host addresses and names, port clashes, and what the boot
// settings name.
func (p *parser) check(opt Options) {
	p.checkSize()
	p.checkNodes()
	p.checkRanges(opt.Masters)
	p.checkRangeAddrs(opt)
	p.assignHosts(opt.Masters)
	p.checkNames()
	p.checkMasterOrder(opt.Masters)
	p.checkPorts()
	p.checkBoot(opt)
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
}

// checkSize reports a file that describes no cluster: one without a
// directive (empty, or only comments and blank lines), one without an
// iprange (no node would have an address, so the master would know none),
// and one whose node count is 0. Loading any of them would drop every node.
func (p *parser) checkSize() {
	c := p.c
	switch {
	case p.directives == 0:
		if len(c.diags) == 0 { // lines left out already have their error
			p.errorf(1, "no directives: the file is empty or only comments; a cluster needs nodes N and iprange FROM TO")
		}
	case p.ipRangeAt > 0 && !c.ipRange.IsValid():
		// The malformed iprange line has its own error.
	case !c.ipRange.IsValid():
		line := 1
		switch {
		case p.once["nodes"] > 0:
			line = p.once["nodes"]
		case len(c.nodeLines) > 0:
			line = c.nodeLines[0].line
		}
		p.errorf(line, "no iprange line: no node has an address, the cluster would have no nodes")
	case c.NodeCount() == 0:
		p.errorf(p.once["nodes"], "nodes 0: the cluster would have no nodes")
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
