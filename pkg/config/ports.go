package config

import "fmt"

// This file checks that the daemons' ports can all be bound at once.

// portUse is one port a master's daemon binds.
type portUse struct {
	name  string // server NAME, or what holds a port no server line moves
	proto string // "TCP" or "UDP"
	port  uint16
	line  int    // the server line that set it; 0 for a default or a fixed port
	fixed string // for a port no server line moves: how to move it
	// soft, when set, says why a clash on this port breaks nothing for
	// sure (a warning, not an error): beofs2, which no beo daemon binds;
	// NFS, which runs only when an fstab mounts from the master; the
	// dashboard, on loopback by default.
	soft string
}

// Ports the master binds that no server line moves: the boot server's
// DHCP and TFTP, the beostatus dashboard (all beo master's, moved with
// its flags) and the NFS server that exports what the fstab mounts from
// the master.
const (
	PortDHCP      = 67
	PortTFTP      = 69
	PortDashboard = 5546
	PortNFS       = 2049
)

// portUses lists every port of c with where it came from.
func (p *parser) portUses() []portUse {
	ports := p.c.ports
	line := func(name string) int { return p.once["server "+name] }
	return []portUse{
		{name: "bproc", proto: "TCP", port: ports.BProc, line: line("bproc")},
		{name: "kickback", proto: "TCP", port: ports.Kickback, line: line("kickback")},
		{name: "http", proto: "TCP", port: ports.HTTP, line: line("http")},
		{name: "beofs2", proto: "TCP", port: ports.BeoFS2, line: line("beofs2"), soft: "beo binds no beofs2 port, but a Scyld master would"},
		{name: "beostats", proto: "UDP", port: ports.BeoStats, line: line("beostats")},
		{name: "syslog", proto: "UDP", port: ports.Syslog, line: line("syslog")},
		{name: "the boot server's DHCP", proto: "UDP", port: PortDHCP, fixed: "beo master -dhcp-port"},
		{name: "the boot server's TFTP", proto: "UDP", port: PortTFTP, fixed: "beo master -tftp-port"},
		{name: "the beostatus dashboard", proto: "TCP", port: PortDashboard, fixed: "beo master -status",
			soft: "beo master cannot bind both if the dashboard is moved off loopback to an address the other uses"},
		{name: "the NFS server of the fstab's exports", proto: "TCP", port: PortNFS, fixed: "nfsd or nfs-ganesha",
			soft: "beo master cannot bind both when the fstab mounts from the master"},
	}
}

// checkPorts reports two daemons of one protocol on one port, defaults
// and fixed ports included: beo master binds them all and would fail at
// the second. The diagnostic is on the later server line and names both.
// A clash on a soft port (beofs2, NFS, the dashboard) is a warning.
func (p *parser) checkPorts() {
	uses := p.portUses()
	for i, a := range uses {
		for _, b := range uses[i+1:] {
			if a.proto != b.proto || a.port != b.port || (a.line == 0 && b.line == 0) {
				continue
			}
			at, other := a, b // at: the later line, where the diagnostic goes
			if b.line > a.line {
				at, other = b, a
			}
			why := a.soft + b.soft
			if why == "" {
				p.errorf(at.line, "server %s %d: %s port %d is also that of %s; beo master cannot bind both",
					at.name, at.port, at.proto, at.port, other.describe())
				continue
			}
			if a.soft != "" && b.soft != "" {
				why = a.soft
			}
			p.warnf(at.line, "server %s %d: %s port %d is also that of %s; %s",
				at.name, at.port, at.proto, at.port, other.describe(), why)
		}
	}
}

// describe names u for a message: "server bproc (line 5)", "server
// bproc (its default)", "the boot server's DHCP (beo master -dhcp-port)".
func (u portUse) describe() string {
	switch {
	case u.fixed != "":
		return fmt.Sprintf("%s (%s)", u.name, u.fixed)
	case u.line > 0:
		return fmt.Sprintf("server %s (line %d)", u.name, u.line)
	}
	return fmt.Sprintf("server %s (its default)", u.name)
}
