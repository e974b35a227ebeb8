package config

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// This file is the effective view: what each node boots, what each host
// device gets, and what a MAC is.

// NodeSpec is everything the file says about one configured node, with
// the boot settings resolved (see the package doc for the precedence).
type NodeSpec struct {
	Num      int
	Line     int        // the node line
	MACs     []MAC      // empty for a reserved number
	Addr     netip.Addr // invalid without an iprange
	Class    string     // may be empty
	Sequence BootSequence
	Stage    BootStage
	Kernel   Setting
	Initrd   Setting
	CmdLine  Setting
	Names    []Name // one per nodename line
}

// Name is one name of a node, from a nodename line.
type Name struct {
	Name  string
	Addr  netip.Addr // the node's address plus the line's offset; invalid without one
	Group string
}

// AfterPXE returns the stage to write back once the boot server has
// answered the node's PXE request: local for a pxe+local node at stage pxe
// (true), otherwise the stage is unchanged (false).
func (s NodeSpec) AfterPXE() (BootStage, bool) {
	if s.Sequence == SeqPXELocal && s.Stage == StagePXE {
		return StageLocal, true
	}
	return s.Stage, false
}

// Host is a host line: a device on the cluster network that is not a node.
type Host struct {
	MAC   MAC
	Addr  netip.Addr // given on the line, or assigned from the hostranges
	Auto  bool       // Addr was assigned from a hostrange
	Names []string
	Line  int
}

// Kind says which kind of line lists a MAC.
type Kind int

// The kinds of MAC.
const (
	KindUnknown Kind = iota // no line lists it
	KindNode
	KindHost
	KindIgnored
)

func (k Kind) String() string {
	return [...]string{"unknown", "node", "host", "ignore"}[k]
}

// Match is what Lookup found for a MAC.
type Match struct {
	Kind Kind
	Node int  // the node number, for KindNode
	Host Host // for KindHost
	Line int  // the line listing the MAC; 0 for KindUnknown
}

// Lookup says whether m belongs to a node, a host device, an ignore line,
// or nothing (KindUnknown; the boot server then applies NodeAssign).
func (c *Config) Lookup(m MAC) Match {
	r, ok := c.macs[m]
	if !ok {
		return Match{Kind: KindUnknown}
	}
	mt := Match{Kind: r.kind, Line: r.line}
	switch r.kind {
	case KindNode:
		mt.Node = r.index
	case KindHost:
		mt.Host = c.hosts[r.index]
		mt.Host.Names = slices.Clone(mt.Host.Names)
	}
	return mt
}

// Node returns the effective spec of node n, false when no node line
// lists n.
func (c *Config) Node(n int) (NodeSpec, bool) {
	i, ok := c.byNum[n]
	if !ok {
		return NodeSpec{}, false
	}
	return c.spec(&c.nodeLines[i]), true
}

// Nodes returns the effective spec of every configured node, by number.
func (c *Config) Nodes() []NodeSpec {
	specs := make([]NodeSpec, 0, len(c.nodeLines))
	for i := range c.nodeLines {
		specs = append(specs, c.spec(&c.nodeLines[i]))
	}
	slices.SortFunc(specs, func(a, b NodeSpec) int { return a.Num - b.Num })
	return specs
}

// Hosts returns the host devices in file order.
func (c *Config) Hosts() []Host {
	hs := slices.Clone(c.hosts)
	for i := range hs {
		hs[i].Names = slices.Clone(hs[i].Names)
	}
	return hs
}

// spec resolves one node line: default, then class, then every per-node
// line including the node in file order, each replacing the last.
func (c *Config) spec(nl *nodeLine) NodeSpec {
	s := NodeSpec{
		Num:      nl.num,
		Line:     nl.line,
		MACs:     slices.Clone(nl.macs),
		Class:    nl.class,
		Sequence: nl.seq,
		Stage:    nl.stage,
	}
	if s.Sequence == "" {
		s.Sequence, s.Stage = SeqPXE, StagePXE
	}
	s.Addr, _ = c.NodeAddr(nl.num)
	set := c.defaults
	if cl := c.classes[nl.class]; cl != nil {
		for a, v := range cl.set {
			if v.IsSet() {
				set[a] = v
			}
		}
	}
	for _, ns := range c.perNode {
		if ns.nodes.Contains(nl.num) {
			set[ns.attr] = ns.set
		}
	}
	s.Kernel, s.Initrd, s.CmdLine = set[attrKernel], set[attrInitrd], set[attrCmdLine]
	for _, np := range c.names {
		s.Names = append(s.Names, np.name(nl.num, s.Addr))
	}
	return s
}

// name applies the pattern to node n at address a.
func (np NamePattern) name(n int, a netip.Addr) Name {
	nm := Name{Name: strings.ReplaceAll(np.Pattern, "%N", strconv.Itoa(n)), Group: np.Group}
	if a.IsValid() {
		nm.Addr, _ = addOffset(a, uint64(np.Offset))
	}
	return nm
}

// NextNode returns the number a new MAC gets under NodeAssign: one above
// the highest configured number (append) or the lowest free one (insert).
// False when assignment is off or the number would reach NodeCount: the
// MAC is then unknown (off) or ignored.
func (c *Config) NextNode() (int, bool) {
	n := 0
	switch c.assign {
	case AssignOff:
		return 0, false
	case AssignInsert:
		for c.hasNode(n) {
			n++
		}
	default:
		for _, nl := range c.nodeLines {
			n = max(n, nl.num+1)
		}
	}
	return n, n < c.NodeCount()
}

func (c *Config) hasNode(n int) bool {
	_, ok := c.byNum[n]
	return ok
}
