package config

import (
	"fmt"
	"slices"
	"strings"
)

// This file parses the lines that say who is who on the cluster network:
// nodes, iprange, hostrange, node, ignore and host.

func (p *parser) nodeCount(line int, args []string) {
	if !p.nargs(line, args, 1, 1, "nodes N") {
		return
	}
	n, err := parseNum(args[0], 0, MaxNodes)
	if err != nil {
		p.errorf(line, "nodes: %v", err)
		return
	}
	p.single(line, "nodes")
	p.c.nodes = n
}

// parseRange parses the FROM TO of an iprange or hostrange line.
func (p *parser) parseRange(line int, name string, args []string) (Range, bool) {
	if !p.nargs(line, args, 2, 2, name+" FROM TO") {
		return Range{}, false
	}
	from, err := parseIPv4(args[0])
	if err != nil {
		p.errorf(line, "%s: %v", name, err)
		return Range{}, false
	}
	to, err := parseIPv4(args[1])
	if err != nil {
		p.errorf(line, "%s: %v", name, err)
		return Range{}, false
	}
	if to.Less(from) {
		p.errorf(line, "%s: %s comes after %s", name, from, to)
		return Range{}, false
	}
	return Range{From: from, To: to, Line: line}, true
}

func (p *parser) ipRange(line int, args []string) {
	p.ipRangeAt = line
	if r, ok := p.parseRange(line, "iprange", args); ok {
		p.single(line, "iprange")
		p.c.ipRange = r
	}
}

func (p *parser) hostRange(line int, args []string) {
	if r, ok := p.parseRange(line, "hostrange", args); ok {
		p.c.hostRanges = append(p.c.hostRanges, r)
	}
}

// node parses `node [N] [CLASS] [SEQ STAGE] [MAC…]`. An unnumbered line
// takes the previous node line's number plus one (0 for the first), even
// when that line had errors, so numbering does not shift around a typo.
func (p *parser) node(line int, args []string) {
	const usage = "node [N] [CLASS] [pxe|local|pxe+local pxe|local] [MAC...]"
	if !p.nargs(line, args, 1, -1, usage) {
		return
	}
	nl := nodeLine{line: line, num: p.next, stageTok: -1}
	if s := args[0]; len(s) > 1 && (s[0] == '-' || s[0] == '+') && isDigits(s[1:]) {
		p.errorf(line, "node: bad node number %s (want 0-%d)", s, MaxNodes-1)
		p.next++
		return
	}
	i, numbered := 0, isDigits(args[0])
	if numbered {
		n, err := parseNum(args[0], 0, MaxNodes-1)
		if err != nil {
			p.errorf(line, "node: %v", err)
			p.next++
			return
		}
		nl.num, i = n, 1
	}
	p.next = nl.num + 1
	if i < len(args) && isWord(args[i]) && !isSeq(args[i]) {
		switch tok := args[i]; {
		case p.c.classes[tok] != nil:
			nl.class = tok
			i++
		case strings.Contains(tok, "pxe") || strings.Contains(tok, "local"):
			p.errorf(line, "node: %q is neither a defined class nor a boot-sequence (pxe, local, pxe+local)", tok)
			return
		default:
			p.errorf(line, "node: unknown class %q", tok)
			return
		}
	}
	if i < len(args) && isWord(args[i]) {
		seq, stage, err := parseBoot(args[i:])
		if err != nil {
			p.errorf(line, "node: %v", err)
			return
		}
		if !stageIn(seq, stage) {
			p.warnf(line, "node: boot-stage %s is not a step of boot-sequence %s", stage, seq)
		}
		nl.seq, nl.stage, nl.stageTok = seq, stage, i+2 // field 0 is "node"
		i += 2
	}
	macs, ok := p.parseMACs(line, "node", args[i:])
	switch {
	case !ok || !p.checkMACs(line, "node", macs):
		return
	case !numbered && len(macs) == 0:
		p.errorf(line, "node: a line without a node number needs a MAC; usage: %s", usage)
		return
	}
	if prev, dup := p.c.byNum[nl.num]; dup {
		p.errorf(line, "node %d already configured on line %d", nl.num, p.c.nodeLines[prev].line)
		return
	}
	if !p.addMACs(line, macs, KindNode, nl.num) {
		return
	}
	nl.macs = macs
	p.c.byNum[nl.num] = len(p.c.nodeLines)
	p.c.nodeLines = append(p.c.nodeLines, nl)
}

// isWord reports whether s is shaped like a class name or boot keyword
// rather than a (perhaps malformed) MAC.
func isWord(s string) bool { return isClassName(s) && !isMAC(s) }

// parseMACs parses every MAC in args, reporting each malformed one.
func (p *parser) parseMACs(line int, directive string, args []string) ([]MAC, bool) {
	ok := true
	macs := make([]MAC, 0, len(args))
	for _, s := range args {
		m, err := ParseMAC(s)
		if err != nil {
			p.errorf(line, "%s: %v", directive, err)
			ok = false
			continue
		}
		macs = append(macs, m)
	}
	return macs, ok
}

// parseBoot parses the SEQ STAGE pair at the start of args.
func parseBoot(args []string) (BootSequence, BootStage, error) {
	if !isSeq(args[0]) {
		return "", "", fmt.Errorf("bad boot-sequence %q (want pxe, local or pxe+local)", args[0])
	}
	if len(args) < 2 || isMAC(args[1]) {
		return "", "", fmt.Errorf("boot-sequence %s needs a boot-stage (pxe or local)", args[0])
	}
	switch st := BootStage(args[1]); st {
	case StagePXE, StageLocal:
		return BootSequence(args[0]), st, nil
	}
	return "", "", fmt.Errorf("bad boot-stage %q (want pxe or local)", args[1])
}

func isSeq(s string) bool {
	switch BootSequence(s) {
	case SeqPXE, SeqLocal, SeqPXELocal:
		return true
	}
	return false
}

// stageIn reports whether stage is one of seq's steps.
func stageIn(seq BootSequence, stage BootStage) bool {
	return seq == SeqPXELocal || string(seq) == string(stage)
}

func isMAC(s string) bool {
	_, err := ParseMAC(s)
	return err == nil
}

// addMACs records that line lists ms, all or none: a MAC already listed,
// on another line or earlier on this one, is an error naming both lines.
func (p *parser) addMACs(line int, ms []MAC, kind Kind, index int) bool {
	ok := true
	for i, m := range ms {
		prev, dup := p.c.macs[m]
		if !dup && slices.Contains(ms[:i], m) {
			prev, dup = macRef{kind: kind, line: line}, true
		}
		if dup {
			p.errorf(line, "MAC %s already listed on line %d (%s)", m, prev.line, prev.kind)
			ok = false
		}
	}
	if !ok {
		return false
	}
	for _, m := range ms {
		p.c.macs[m] = macRef{kind: kind, line: line, index: index}
	}
	return true
}

func (p *parser) ignore(line int, args []string) {
	if !p.nargs(line, args, 1, -1, "ignore MAC...") {
		return
	}
	if macs, ok := p.parseMACs(line, "ignore", args); ok && p.checkMACs(line, "ignore", macs) && p.addMACs(line, macs, KindIgnored, 0) {
		p.c.ignored = append(p.c.ignored, macs...)
	}
}
