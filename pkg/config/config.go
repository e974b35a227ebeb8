package config

import (
	"io/fs"
	"net/netip"
	"slices"
	"time"
)

// DefaultPath is where the master looks for its config file.
const DefaultPath = "/etc/beowulf/config"

// MaxNodes bounds node numbers: every node number is below it.
const MaxNodes = 1 << 20

// Default values of the settings a file may leave out.
const (
	DefaultPingTimeout = 60 * time.Second
	DefaultNodeAssign  = AssignAppend
)

// BootSequence is a node's boot-sequence: which steps its boots go through.
type BootSequence string

// The boot sequences.
const (
	SeqPXE      BootSequence = "pxe"       // always provision over the network
	SeqLocal    BootSequence = "local"     // always boot the local disk
	SeqPXELocal BootSequence = "pxe+local" // provision once, then boot the local disk
)

// BootStage is the step of its boot-sequence a node is at; it decides how
// the boot server answers the node's next PXE request.
type BootStage string

// The boot stages.
const (
	StagePXE   BootStage = "pxe"   // answer with kernel, initrd and command line
	StageLocal BootStage = "local" // answer "boot next": the local disk
)

// Assign is the nodeassign mode: what the boot server does with a MAC that
// no line lists.
type Assign string

// The nodeassign modes.
const (
	AssignAppend Assign = "append" // new node numbered one above the highest configured
	AssignInsert Assign = "insert" // new node takes the lowest free number
	AssignOff    Assign = "off"    // no new nodes: the MAC is unknown
)

// Mkfs is the mkfs policy: when a node's local filesystem (or swap) is
// made, before it is mounted (or swapped on).
type Mkfs string

// The mkfs policies.
const (
	MkfsNever   Mkfs = "never"    // never: a partition without one is an error
	MkfsIfError Mkfs = "if_error" // when the partition has none, or fsck cannot repair it
	MkfsAlways  Mkfs = "always"   // at every setup: the data does not survive a reboot
)

// Fsck is the fsck policy: how a node's local filesystem is checked
// before it is mounted.
type Fsck string

// The fsck policies.
const (
	FsckNever Fsck = "never" // not checked
	FsckSafe  Fsck = "safe"  // e2fsck -p: quick, repairs only what is safe without a human
	FsckFull  Fsck = "full"  // e2fsck -f -y: a full check, every repair answered yes
)

// Defaults of the local-disk policies (Scyld's: nothing is made unless
// asked; a quick check).
const (
	DefaultMkfs = MkfsNever
	DefaultFsck = FsckSafe
)

// Options are facts about the master that checking a file needs. The
// zero Options checks the file alone.
type Options struct {
	// Masters are the master's addresses on the cluster network; no
	// iprange or hostrange may contain one.
	Masters []netip.Addr
	// Networks are the master's cluster networks (its cluster
	// interfaces' address/prefix): a range holding the network or
	// broadcast address of one is an error. Without them, a range
	// holding an x.x.x.0 or x.x.x.255 address draws a warning (those are
	// the network and broadcast addresses of a /24).
	Networks []netip.Prefix
	// Module reports whether the nodes' kernel has the module (or has it
	// built in), from the module tree the boot image is built from
	// (/lib/modules/RELEASE/modules.dep, see initramfs): a bootmodule it
	// does not know is an error. nil: bootmodule names are not checked.
	Module func(name string) bool
	// Stat looks up the files kernelimage and initrdimage lines name on
	// the master (os.Stat): a missing one, or one that is not a regular
	// file, draws a warning. nil: they are not looked for.
	Stat func(path string) (fs.FileInfo, error)
}

// Config is a parsed config file. It is immutable; File edits produce a new one.
type Config struct {
	file  string
	diags []Diag

	nodes      int // `nodes N`, -1 when absent
	ipRange    Range
	hostRanges []Range
	nodeLines  []nodeLine
	byNum      map[int]int // node number → index in nodeLines
	hosts      []Host
	ignored    []MAC
	macs       map[MAC]macRef
	classes    map[string]*class
	defaults   settings
	perNode    []nodeSetting
	names      []NamePattern
	interfaces []string
	ports      Ports
	ping       time.Duration
	libraries  []string
	modules    []string
	assign     Assign
	forward    bool // ipforward
	mkfs       Mkfs
	fsck       Fsck

	masterOrders []masterOrder // masterorder lines, in file order
}

// nodeLine is one `node` line.
type nodeLine struct {
	line     int
	num      int
	class    string
	seq      BootSequence // "" when the line has none
	stage    BootStage
	stageTok int // index of the stage token among the line's fields, -1 if none
	macs     []MAC
}

// macRef says where a MAC is listed.
type macRef struct {
	kind  Kind
	line  int
	index int // node number, or index in hosts
}

// NamePattern is a nodename line: node N is also called Pattern with %N
// replaced by N, at its address plus Offset, in netgroup Group.
type NamePattern struct {
	Pattern string
	Offset  uint32 // added to the node's address; 0.0.1.0 is 256
	Group   string // may be empty
	Line    int
}

// Ports are the daemons' ports, from `server NAME PORT` lines or defaults.
type Ports struct {
	BProc    uint16 // bpmaster, TCP; server bproc
	BeoStats uint16 // recvstats, UDP; server beostats
	Kickback uint16 // kickback name service; server kickback
	Syslog   uint16 // log receiver, UDP; server syslog
	BeoFS2   uint16 // beofs2 file service; server beofs2 (alias: server tcp)
	HTTP     uint16 // boot server HTTP (kernel, initrd, rootfs); server http
}

// DefaultPorts returns the ports used when no server line names them.
func DefaultPorts() Ports {
	return Ports{BProc: 933, BeoStats: 5545, Kickback: 3045, Syslog: 514, BeoFS2: 932, HTTP: 80}
}

// File is the name diagnostics use for the parsed file.
func (c *Config) File() string { return c.file }

// Diags returns every diagnostic, warnings and errors, in line order.
func (c *Config) Diags() []Diag { return slices.Clone(c.diags) }

// Err returns a *DiagError holding the error-severity diagnostics, or nil.
func (c *Config) Err() error {
	var errs []Diag
	for _, d := range c.diags {
		if d.Severity == Error {
			errs = append(errs, d)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &DiagError{Diags: errs}
}

// NodeCount is the number of node slots, numbered 0…NodeCount-1: `nodes N`
// capped at the size of the iprange; the iprange size without `nodes`; 0
// with neither.
func (c *Config) NodeCount() int {
	size := c.ipRange.Size()
	switch {
	case c.nodes < 0:
		return int(min(size, MaxNodes))
	case c.ipRange.IsValid() && size < uint64(c.nodes):
		return int(size)
	}
	return c.nodes
}

// IPRange returns the compute nodes' address range; its IsValid is false
// without an iprange line.
func (c *Config) IPRange() Range { return c.ipRange }

// HostRanges returns the hostrange lines in file order.
func (c *Config) HostRanges() []Range { return slices.Clone(c.hostRanges) }

// NodeAddr returns node n's address: the iprange start plus n, for any
// n below NodeCount whether or not a node line lists it.
func (c *Config) NodeAddr(n int) (netip.Addr, bool) {
	if n < 0 || n >= c.NodeCount() || !c.ipRange.IsValid() {
		return netip.Addr{}, false
	}
	a, ok := addOffset(c.ipRange.From, uint64(n))
	if !ok || !c.ipRange.Contains(a) {
		return netip.Addr{}, false
	}
	return a, true
}

// NodeByAddr is the inverse of NodeAddr. (nodename aliases at an offset
// are not node addresses.)
func (c *Config) NodeByAddr(a netip.Addr) (int, bool) {
	a = a.Unmap()
	if !c.ipRange.Contains(a) {
		return 0, false
	}
	n := uint64(u32(a)) - uint64(u32(c.ipRange.From))
	if n >= uint64(c.NodeCount()) {
		return 0, false
	}
	return int(n), true
}

// Ports returns the daemons' ports.
func (c *Config) Ports() Ports { return c.ports }

// PingTimeout is how long a node may stay silent before it is down.
func (c *Config) PingTimeout() time.Duration { return c.ping }

// PingInterval is how often the master pings each node: PingTimeout/2.
func (c *Config) PingInterval() time.Duration { return c.ping / 2 }

// Libraries returns the paths of every libraries line, in file order.
func (c *Config) Libraries() []string { return slices.Clone(c.libraries) }

// BootModules returns the module names of every bootmodule line, in file order.
func (c *Config) BootModules() []string { return slices.Clone(c.modules) }

// Interfaces returns the cluster network interfaces, in file order.
func (c *Config) Interfaces() []string { return slices.Clone(c.interfaces) }

// NodeAssign returns the nodeassign mode.
func (c *Config) NodeAssign() Assign { return c.assign }

// IPForward reports whether the config has `ipforward`: the master
// forwards the cluster network's traffic to its other interfaces and
// masquerades it (pkg/nat), and DHCP gives nodes the master as router and
// the master's DNS servers.
func (c *Config) IPForward() bool { return c.forward }

// MkfsPolicy returns the mkfs setting (DefaultMkfs without a line).
func (c *Config) MkfsPolicy() Mkfs { return c.mkfs }

// FsckPolicy returns the fsck setting (DefaultFsck without a line).
func (c *Config) FsckPolicy() Fsck { return c.fsck }

// NodeNames returns the nodename lines in file order.
func (c *Config) NodeNames() []NamePattern { return slices.Clone(c.names) }

// Ignored returns the MACs of the ignore lines, in file order.
func (c *Config) Ignored() []MAC { return slices.Clone(c.ignored) }
