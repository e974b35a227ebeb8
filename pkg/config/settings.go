package config

import (
	"path"
	"slices"
	"strings"
	"time"
)

// This file parses the cluster-wide settings: nodename, interface, server,
// pingtimeout, libraries, bootmodule, nodeassign, ipforward, mkfs and fsck.

// nodename parses `nodename PATTERN [OFFSET] [GROUP]`. With two arguments
// the second is an OFFSET if it parses as one, else a GROUP.
func (p *parser) nodename(line int, args []string) {
	const usage = "nodename PATTERN [OFFSET] [GROUP]"
	if !p.nargs(line, args, 1, 3, usage) {
		return
	}
	np := NamePattern{Pattern: args[0], Line: line}
	if !strings.Contains(np.Pattern, "%N") || !isHostName(strings.ReplaceAll(np.Pattern, "%N", "0")) {
		p.errorf(line, "nodename: pattern %q must be a host name containing %%N", np.Pattern)
		return
	}
	rest := args[1:]
	if len(rest) > 0 {
		off, ok := parseOffset(rest[0])
		switch {
		case ok:
			np.Offset, rest = off, rest[1:]
		case len(rest) == 2 || looksLikeAddr(rest[0]):
			p.errorf(line, "nodename: bad offset %q (want 0.0.1.0 or a number)", rest[0])
			return
		}
	}
	if len(rest) > 0 {
		if !isHostName(rest[0]) {
			p.errorf(line, "nodename: bad group name %q", rest[0])
			return
		}
		np.Group = rest[0]
	}
	p.c.names = append(p.c.names, np)
}

func (p *parser) iface(line int, args []string) {
	if !p.nargs(line, args, 1, 1, "interface NAME") {
		return
	}
	name := args[0]
	switch {
	case len(name) > 15 || name == "." || name == ".." || strings.ContainsAny(name, "/:"):
		p.errorf(line, "interface: bad interface name %q", name)
	case slices.Contains(p.c.interfaces, name):
		p.warnf(line, "interface %s listed twice", name)
	default:
		p.c.interfaces = append(p.c.interfaces, name)
	}
}

// server parses `server NAME PORT`; `server tcp` is the old name of beofs2.
func (p *parser) server(line int, args []string) {
	if !p.nargs(line, args, 2, 2, "server NAME PORT") {
		return
	}
	port, err := parseNum(args[1], 1, 65535)
	if err != nil {
		p.errorf(line, "server %s: bad port: %v", args[0], err)
		return
	}
	name := args[0]
	if name == "tcp" {
		p.warnf(line, "server tcp is deprecated; use server beofs2")
		name = "beofs2"
	}
	ports := &p.c.ports
	fields := map[string]*uint16{
		"bproc": &ports.BProc, "beostats": &ports.BeoStats, "kickback": &ports.Kickback,
		"syslog": &ports.Syslog, "beofs2": &ports.BeoFS2, "http": &ports.HTTP,
	}
	f, ok := fields[name]
	if !ok {
		p.warnf(line, "unknown server %q ignored (known: beofs2, beostats, bproc, http, kickback, syslog)", name)
		return
	}
	p.single(line, "server "+name)
	*f = uint16(port)
}

func (p *parser) pingTimeout(line int, args []string) {
	if !p.nargs(line, args, 1, 1, "pingtimeout SECONDS") {
		return
	}
	n, err := parseNum(args[0], 1, 86400)
	if err != nil {
		p.errorf(line, "pingtimeout: %v", err)
		return
	}
	p.single(line, "pingtimeout")
	p.c.ping = time.Duration(n) * time.Second
}

func (p *parser) libraries(line int, args []string) {
	if !p.nargs(line, args, 1, -1, "libraries PATH...") {
		return
	}
	for _, a := range args {
		if !path.IsAbs(a) {
			p.warnf(line, "libraries: path %q is not absolute", a)
		}
	}
	p.c.libraries = append(p.c.libraries, args...)
}

func (p *parser) bootModule(line int, args []string) {
	if p.nargs(line, args, 1, -1, "bootmodule NAME...") {
		p.c.modules = append(p.c.modules, args...)
		for range args {
			p.moduleLines = append(p.moduleLines, line)
		}
	}
}

// nodeAssign parses `nodeassign append|insert|off`; locked means off.
func (p *parser) nodeAssign(line int, args []string) {
	if !p.nargs(line, args, 1, 1, "nodeassign append|insert|off") {
		return
	}
	a := Assign(args[0])
	switch a {
	case "locked":
		a = AssignOff
	case AssignAppend, AssignInsert, AssignOff:
	default:
		p.errorf(line, "nodeassign: bad mode %q (want append, insert or off)", args[0])
		return
	}
	p.single(line, "nodeassign")
	p.c.assign = a
}

// ipForward parses `ipforward [yes|no]`: alone it means yes; yes, on,
// true and 1 turn forwarding on, no, off, false and 0 off.
func (p *parser) ipForward(line int, args []string) {
	if !p.nargs(line, args, 0, 1, "ipforward [yes|no]") {
		return
	}
	on := true
	if len(args) == 1 {
		switch args[0] {
		case "yes", "on", "true", "1":
		case "no", "off", "false", "0":
			on = false
		default:
			p.errorf(line, "ipforward: bad value %q (want yes or no)", args[0])
			return
		}
	}
	p.single(line, "ipforward")
	p.c.forward = on
}

// mkfsPolicy parses `mkfs never|if_error|always`; if_needed is beo's
// other name for if_error.
func (p *parser) mkfsPolicy(line int, args []string) {
	if !p.nargs(line, args, 1, 1, "mkfs never|if_error|always") {
		return
	}
	m := Mkfs(args[0])
	switch m {
	case "if_needed":
		m = MkfsIfError
	case MkfsNever, MkfsIfError, MkfsAlways:
	default:
		p.errorf(line, "mkfs: bad policy %q (want never, if_error or always)", args[0])
		return
	}
	p.single(line, "mkfs")
	p.c.mkfs = m
}

// fsckPolicy parses `fsck never|safe|full`.
func (p *parser) fsckPolicy(line int, args []string) {
	if !p.nargs(line, args, 1, 1, "fsck never|safe|full") {
		return
	}
	f := Fsck(args[0])
	switch f {
	case FsckNever, FsckSafe, FsckFull:
	default:
		p.errorf(line, "fsck: bad policy %q (want never, safe or full)", args[0])
		return
	}
	p.single(line, "fsck")
	p.c.fsck = f
}
