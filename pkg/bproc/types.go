package bproc

import (
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// This file is what the API hands its callers and takes from them: its
// own types, converted from and to pkg/wire's here, so the protocol's
// shapes (JSON tags, fields only the master and the nodes use, such as
// File.Cred) can change without touching the commands.

// NodeInfo is one node as the master shows it.
type NodeInfo struct {
	Node  int
	State string // as bpstat shows it: "up", "[up]", "down", …
	Addr  string // "" if none
	MACs  []string
	Mode  uint32 // the execute bits, 0111 for everybody
	UID   uint32
	GID   uint32
	User  string // UID's name on the master
	Group string // GID's name on the master
	Since time.Time
}

// Status is the node table, and the master answering.
type Status struct {
	MasterAddr string
	Nodes      []NodeInfo
	Master     *MasterInfo // nil from a master that does not say
}

// MasterInfo describes the running bpmaster.
type MasterInfo struct {
	PID     int
	Build   string
	Config  string
	Started time.Time
}

// Proc is one remote process known to the master.
type Proc struct {
	Node    int
	PID     int // on the node
	Ghost   int // local pid standing for it: its ghost, or its client's until the ghost is there
	Client  int // local pid of the bpsh (or other client) that started the job
	Parent  int // for a node-side child: the PID of the job's process
	UID     uint32
	Argv    []string
	Started time.Time
}

// File names a bpcp transfer: Path on Node. For PutFiles, Sources are
// the local files to copy (absolute, clean paths).
type File struct {
	Node      int
	Path      string
	Recursive bool
	Preserve  bool
	Sources   []string
}

// Control is what bpctl asks of nodes: the actions, in this order, on
// each of Nodes.
type Control struct {
	Nodes     []int
	State     string  // -s
	Power     string  // "reboot", "halt", "pwroff" (-R -H -P)
	Mode      *uint32 // -m
	UID       *uint32 // -u
	GID       *uint32 // -g
	ForgetKey bool    // drop the node's pinned key
	Reconnect bool
}

// Rlimit is one resource limit for a remote process.
type Rlimit struct {
	Resource int
	Cur      uint64
	Max      uint64
}

func nodeInfo(n wire.NodeInfo) NodeInfo {
	return NodeInfo{Node: n.Node, State: n.State, Addr: n.Addr, MACs: n.MACs, Mode: n.Mode,
		UID: n.UID, GID: n.GID, User: n.User, Group: n.Group, Since: n.Since}
}

func status(s wire.Status) Status {
	out := Status{MasterAddr: s.MasterAddr, Nodes: make([]NodeInfo, len(s.Nodes))}
	for i, n := range s.Nodes {
		out.Nodes[i] = nodeInfo(n)
	}
	if m := s.Master; m != nil {
		out.Master = &MasterInfo{PID: m.PID, Build: m.Build, Config: m.Config, Started: m.Started}
	}
	return out
}

func procs(ps []wire.Proc) []Proc {
	out := make([]Proc, len(ps))
	for i, p := range ps {
		out[i] = Proc{Node: p.Node, PID: p.PID, Ghost: p.Ghost, Client: p.Client, Parent: p.Parent, UID: p.UID, Argv: p.Argv, Started: p.Started}
	}
	return out
}

func (f File) wire() *wire.File {
	return &wire.File{Node: f.Node, Path: f.Path, Recursive: f.Recursive, Preserve: f.Preserve, Sources: f.Sources}
}

func (c Control) wire() *wire.Control {
	return &wire.Control{Nodes: c.Nodes, State: c.State, Power: c.Power, Mode: c.Mode, UID: c.UID, GID: c.GID,
		ForgetKey: c.ForgetKey, Reconnect: c.Reconnect}
}

func rlimits(rl []Rlimit) []wire.Rlimit {
	out := make([]wire.Rlimit, len(rl))
	for i, l := range rl {
		out[i] = wire.Rlimit{Resource: l.Resource, Cur: l.Cur, Max: l.Max}
	}
	return out
}
