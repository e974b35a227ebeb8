package config

import (
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// This file parses what nodes boot: class lines and the kernelimage,
// initrdimage and kernelcommandline lines.

// Level says which kind of line a Setting came from.
type Level int

// The levels, weakest first: a node or range line beats its node's class,
// which beats the default.
const (
	LevelUnset   Level = iota // no line sets it
	LevelDefault              // a line without a node spec
	LevelClass                // the node's class
	LevelNode                 // a line whose node spec includes the node
)

func (l Level) String() string {
	return [...]string{"unset", "default", "class", "node"}[l]
}

// Setting is one effective kernel image, initrd image or command line.
// "none" (do not provide one) is distinct from unset (nothing configured:
// the boot server's built-in choice applies).
type Setting struct {
	Value string // path or command line; empty when None or unset
	None  bool   // the line said "none"
	Level Level
	Line  int // the line it came from, 0 when unset
}

// IsSet reports whether some line configured the setting.
func (s Setting) IsSet() bool { return s.Level != LevelUnset }

// String returns the value, "none", or "-" when unset.
func (s Setting) String() string {
	switch {
	case !s.IsSet():
		return "-"
	case s.None:
		return "none"
	}
	return s.Value
}

// attr names one of the three boot settings.
type attr int

const (
	attrKernel attr = iota
	attrInitrd
	attrCmdLine
	nAttrs
)

func (a attr) String() string {
	return [...]string{"kernelimage", "initrdimage", "kernelcommandline"}[a]
}

func attrOf(name string) attr {
	for a := range nAttrs {
		if a.String() == name {
			return a
		}
	}
	return nAttrs
}

// settings holds the three boot settings of one level.
type settings [nAttrs]Setting

// class is the union of a class's lines.
type class struct {
	line int // first line naming it
	set  settings
}

// nodeSetting is a kernelimage, initrdimage or kernelcommandline line with
// a node spec.
type nodeSetting struct {
	nodes NodeSet
	attr  attr
	set   Setting
}

// isClassName reports whether s may name a class: a letter, then letters,
// digits, '_', '.', '+' or '-'.
func isClassName(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-") == ""
}

// class parses `class NAME ATTR VALUE…` (first pass). Any valid line
// defines NAME, even one with a bad value, so node lines still resolve it.
func (p *parser) class(line int, args []string) {
	const usage = "class NAME kernelimage|initrdimage|kernelcommandline VALUE"
	if !p.nargs(line, args, 2, -1, usage) {
		return
	}
	name := args[0]
	switch {
	case !isClassName(name) || isMAC(name):
		p.errorf(line, "class: bad class name %q", name)
		return
	case isSeq(name) || name == "none":
		p.errorf(line, "class: %q is a reserved word, not a class name", name)
		return
	}
	c := p.c.classes[name]
	if c == nil {
		c = &class{line: line}
		p.c.classes[name] = c
	}
	a := attrOf(args[1])
	if a == nAttrs {
		p.warnf(line, "class %s: unknown attribute %q ignored", name, args[1])
		return
	}
	s, ok := p.value(line, a, args[2:], "class "+name+" "+a.String())
	if !ok {
		return
	}
	s.Level = LevelClass
	p.single(line, "class "+name+" "+a.String())
	c.set[a] = s
}

// boot parses `kernelimage [NODES] PATH|none` and its two siblings. For
// the images a first token among two or more is a node spec; for
// kernelcommandline only when shaped like one (digits, '-', ','). A lone
// node spec is a missing value.
func (p *parser) boot(line int, a attr, args []string) {
	usage := a.String() + " [NODES] PATH|none"
	if a == attrCmdLine {
		usage = a.String() + " [NODES] ARGS...|none"
	}
	if !p.nargs(line, args, 1, -1, usage) {
		return
	}
	if len(args) == 1 && nodeSetSyntax(args[0]) {
		p.errorf(line, "%s: missing value after node spec %s; usage: %s", a, args[0], usage)
		return
	}
	var nodes NodeSet
	if len(args) > 1 && (a != attrCmdLine || nodeSetSyntax(args[0])) {
		set, err := ParseNodeSet(args[0])
		if err != nil {
			p.errorf(line, "%s: %v", a, err)
			return
		}
		nodes, args = set, args[1:]
	}
	s, ok := p.value(line, a, args, a.String())
	if !ok {
		return
	}
	s.Level = LevelNode
	if nodes == nil {
		s.Level = LevelDefault
		p.single(line, "default "+a.String())
		p.c.defaults[a] = s
		return
	}
	p.c.perNode = append(p.c.perNode, nodeSetting{nodes: nodes, attr: a, set: s})
}

// Command line lengths: x86 Linux keeps 2047 bytes of its command line
// (COMMAND_LINE_SIZE 2048 with the NUL) and drops the rest without a
// word; a kernelcommandline may use all but the room the boot server's
// own parameters need (pkg/bootparam: beo.master=, the ports, rootfs,
// syslog_server=, beo.modules= with the fstab's file systems).
const (
	kernelCmdline = 2047
	MaxCmdline    = kernelCmdline - 512
)

// value parses the VALUE of a boot setting: one path (kernel, initrd) or
// the rest of the line joined by single spaces (command line); "none"
// alone means do not provide one.
func (p *parser) value(line int, a attr, args []string, what string) (Setting, bool) {
	s := Setting{Line: line}
	switch {
	case len(args) == 0:
		p.errorf(line, "%s: missing value (a path, or none)", what)
		return s, false
	case len(args) == 1 && args[0] == "none":
		s.None = true
		return s, true
	case a == attrCmdLine:
		s.Value = strings.Join(args, " ")
		if len(s.Value) > MaxCmdline {
			p.errorf(line, "%s: %d bytes; at most %d: a Linux kernel keeps %d bytes of its command line, and the boot server appends its own parameters (beo.master=…, up to %d bytes) after these, which the kernel would cut off",
				what, len(s.Value), MaxCmdline, kernelCmdline, kernelCmdline-MaxCmdline)
			return s, false
		}
		return s, true
	case len(args) > 1:
		p.errorf(line, "%s: too many arguments; want one path or none", what)
		return s, false
	case !path.IsAbs(args[0]):
		p.warnf(line, "%s: path %q is not absolute", what, args[0])
	}
	s.Value = args[0]
	return s, true
}

// CmdLines returns the value of every kernelcommandline line — default,
// class and per-node — in file order: what some node's kernel may be
// told. "none" lines give nothing.
func (c *Config) CmdLines() []Setting {
	var out []Setting
	add := func(s Setting) {
		if s.IsSet() && !s.None {
			out = append(out, s)
		}
	}
	add(c.defaults[attrCmdLine])
	for _, cl := range c.classes {
		add(cl.set[attrCmdLine])
	}
	for _, ns := range c.perNode {
		if ns.attr == attrCmdLine {
			add(ns.set)
		}
	}
	slices.SortStableFunc(out, func(a, b Setting) int { return a.Line - b.Line })
	return out
}

// checkBoot checks what the boot settings name, as far as opt lets it:
// bootmodule names the nodes' kernel does not have (an error: building
// the boot image fails on them), kernelimage and initrdimage files
// missing on the master (a warning: the file may be put there before a
// node boots), and per-node lines (and masterorder lines) whose node spec
// holds no node of the cluster (a warning: the line does nothing).
func (p *parser) checkBoot(opt Options) {
	c := p.c
	if opt.Module != nil {
		for i, m := range c.modules {
			if !opt.Module(m) {
				p.errorf(p.moduleLines[i], "bootmodule %s: no such module in the nodes' kernel (not in its modules.dep nor built in); building the boot image would fail", m)
			}
		}
	}
	if opt.Stat != nil {
		type image struct {
			a attr
			s Setting
		}
		var all []image
		for _, a := range []attr{attrKernel, attrInitrd} {
			all = append(all, image{a, c.defaults[a]})
			for _, cl := range c.classes {
				all = append(all, image{a, cl.set[a]})
			}
		}
		for _, ns := range c.perNode {
			all = append(all, image{ns.attr, ns.set})
		}
		for _, im := range all {
			if im.a == attrCmdLine || !im.s.IsSet() || im.s.None || !path.IsAbs(im.s.Value) {
				continue
			}
			switch fi, err := opt.Stat(im.s.Value); {
			case err != nil:
				p.warnf(im.s.Line, "%s %s: %v; nodes booting it would fail", im.a, im.s.Value, unwrapPath(err))
			case !fi.Mode().IsRegular():
				p.warnf(im.s.Line, "%s %s: not a regular file; nodes booting it would fail", im.a, im.s.Value)
			}
		}
	}
	count := c.NodeCount()
	if count == 0 {
		return // the file has its error already
	}
	covers := func(set NodeSet) bool {
		return slices.ContainsFunc(set, func(r NodeRange) bool { return r.Lo < count })
	}
	for _, ns := range c.perNode {
		if !covers(ns.nodes) {
			p.warnf(ns.set.Line, "%s %s: the cluster has %s; the line applies to no node", ns.attr, ns.nodes, describeNodes(count))
		}
	}
	for _, mo := range c.masterOrders {
		if mo.nodes != nil && !covers(mo.nodes) {
			p.warnf(mo.line, "masterorder %s: the cluster has %s; the line applies to no node", mo.nodes, describeNodes(count))
		}
	}
}

// unwrapPath drops the "stat PATH: " of a *fs.PathError: the message
// names the path already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
