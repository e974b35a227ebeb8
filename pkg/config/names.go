package config

import (
	"net/netip"
	"strconv"
	"strings"
)

// This file checks the names the file gives: the master publishes every
// one of them in /etc/hosts and /etc/ethers (pkg/nss), where a lookup
// takes the first line holding a name (case-insensitively). One name at
// two addresses would make `getent hosts NAME`, ssh and the BProc tools
// silently pick one of them, so that is an error; a name merely repeated
// at the same address is a warning.

// checkNames reports nodename lines that repeat or contradict each other,
// host names given to two addresses, and host names that are a node's
// or the master's. It runs after assignHosts, so every host has its
// address.
func (p *parser) checkNames() {
	c := p.c
	for i, np := range c.names {
		for _, prev := range c.names[:i] {
			if !strings.EqualFold(np.Pattern, prev.Pattern) {
				continue
			}
			if np.Offset == prev.Offset {
				p.warnf(np.Line, "nodename %s repeats line %d: every name is given twice", np.Pattern, prev.Line)
			} else {
				p.errorf(np.Line, "nodename %s: line %d gives the same names at another offset: each would name two addresses", np.Pattern, prev.Line)
			}
			break
		}
	}
	type seen struct {
		addr netip.Addr
		line int
	}
	byName := map[string]seen{}
	for _, h := range c.hosts {
		for _, name := range h.Names {
			key := strings.ToLower(name)
			if prev, ok := byName[key]; ok {
				if prev.addr != h.Addr && h.Addr.IsValid() && prev.addr.IsValid() {
					p.errorf(h.Line, "host %s: name %s is already host %s's on line %d: one name at two addresses", h.MAC, name, prev.addr, prev.line)
				}
				continue
			}
			byName[key] = seen{h.Addr, h.Line}
			p.checkHostName(h, name)
		}
	}
}

// checkHostName reports a host name that the master's names (master,
// .-1) or a node's (a nodename pattern's, or nN, which the BProc tools
// read as node N) already use.
func (p *parser) checkHostName(h Host, name string) {
	c := p.c
	if strings.EqualFold(name, "master") {
		p.errorf(h.Line, "host %s: name %s is the master's own name on the cluster network", h.MAC, name)
		return
	}
	count := c.NodeCount()
	for _, np := range c.names {
		n, ok := patternNode(np.Pattern, name)
		if !ok || n >= count {
			continue
		}
		p.errorf(h.Line, "host %s: name %s is node %d's (nodename %s, line %d): one name at two addresses", h.MAC, name, n, np.Pattern, np.Line)
		return
	}
	if n, ok := patternNode("n%N", name); ok && n < count {
		p.warnf(h.Line, "host %s: name %s is how bpsh, bpstat and the other BProc tools name node %d; they will never reach this device by it", h.MAC, name, n)
	}
}

// patternNode reports whether name is what pattern gives some node N,
// case-insensitively, and N.
func patternNode(pattern, name string) (int, bool) {
	pre, suf, ok := strings.Cut(strings.ToLower(pattern), "%n")
	lower := strings.ToLower(name)
	if !ok || len(lower) <= len(pre)+len(suf) || !strings.HasPrefix(lower, pre) || !strings.HasSuffix(lower, suf) {
		return 0, false
	}
	digits := lower[len(pre) : len(lower)-len(suf)]
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || strconv.Itoa(n) != digits || n >= MaxNodes {
		return 0, false
	}
	return n, true
}
