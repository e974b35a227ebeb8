package config

import (
	"net/netip"
	"slices"
)

// This file handles host lines: devices on the cluster network that are
// not nodes, and the addresses they get.

// host parses `host MAC [IP] [NAME…]`: the token after the MAC is the
// address if it parses as one; otherwise check assigns one from the
// hostranges.
func (p *parser) host(line int, args []string) {
	if !p.nargs(line, args, 1, -1, "host MAC [IP] [NAME...]") {
		return
	}
	m, err := ParseMAC(args[0])
	if err != nil {
		p.errorf(line, "host: %v", err)
		return
	}
	if !p.checkMACs(line, "host", []MAC{m}) {
		return
	}
	h := Host{MAC: m, Line: line}
	names := args[1:]
	if len(names) > 0 && looksLikeAddr(names[0]) {
		a, err := parseIPv4(names[0])
		if err != nil {
			p.errorf(line, "host: %v", err)
			return
		}
		h.Addr, names = a, names[1:]
	}
	for _, n := range names {
		if !isHostName(n) {
			p.errorf(line, "host: bad host name %q", n)
			return
		}
	}
	h.Names = names
	if p.addMACs(line, []MAC{m}, KindHost, len(p.c.hosts)) {
		p.c.hosts = append(p.c.hosts, h)
	}
}

// isHostName reports whether s is usable as a host or group name: letters,
// digits, '-', '_' and '.', starting with a letter or digit, not an address.
func isHostName(s string) bool {
	if s == "" || len(s) > 253 || !isAlnum(s[0]) || looksLikeAddr(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.' {
			return false
		}
	}
	return true
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// assignHosts checks the addresses host lines give and hands the others,
// in file order, the lowest address of the first hostrange (in file order)
// that no host line names and that is not a master's.
func (p *parser) assignHosts(masters []netip.Addr) {
	c := p.c
	used := map[netip.Addr]int{}
	for _, m := range masters {
		used[m.Unmap()] = 0
	}
	for i := range c.hosts {
		h := &c.hosts[i]
		if !h.Addr.IsValid() {
			continue
		}
		if !slices.ContainsFunc(c.hostRanges, func(r Range) bool { return r.Contains(h.Addr) }) {
			p.errorf(h.Line, "host %s: address %s is outside every hostrange", h.MAC, h.Addr)
		}
		switch prev, dup := used[h.Addr]; {
		case dup && prev == 0:
			p.errorf(h.Line, "host %s: address %s is the master's", h.MAC, h.Addr)
			continue
		case dup:
			p.errorf(h.Line, "host %s: address %s already given on line %d", h.MAC, h.Addr, prev)
			continue
		}
		used[h.Addr] = h.Line
	}
	r, next := 0, netip.Addr{} // hostrange index, next address to try
	free := func() (netip.Addr, bool) {
		for ; r < len(c.hostRanges); r++ {
			hr := c.hostRanges[r]
			if !hr.Contains(next) {
				next = hr.From
			}
			for ; hr.Contains(next); next, _ = addOffset(next, 1) {
				if _, taken := used[next]; !taken {
					return next, true
				}
			}
		}
		return netip.Addr{}, false
	}
	for i := range c.hosts {
		h := &c.hosts[i]
		if h.Addr.IsValid() {
			continue
		}
		a, ok := free()
		if !ok {
			p.errorf(h.Line, "host %s: no free address left in the hostranges", h.MAC)
			continue
		}
		h.Addr, h.Auto = a, true
		used[a] = h.Line
	}
}
