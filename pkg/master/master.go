// Package master is bpmaster: it owns the node table, accepts bpslave
// connections, runs node_up, keeps the heartbeat, and routes every process
// operation that local clients (bpsh, bpcp, bpctl, bpstat, bplib) ask for.
//
// # Node sessions
//
// A node dials the bproc port (933 by default) and speaks pkg/link (TLS
// 1.3 with ed25519 keys, then yamux). Its number comes from its source
// address (node N = iprange start + N), never from what it claims: a
// Hello naming another number, another protocol version or another build
// hash is refused, and so is a key that may not speak for node N (below).
// A new session for a node with the same key replaces the old one. On
// connect the node goes boot, mounts its fstab lines (Config.Mounts,
// mounts.go: a failed mount without nonfatal makes it error), node_up
// runs (output appended to LogDir/node.N), then each executable of the
// init.d directory in name order (initd.go); all exiting 0 makes it up,
// anything else error. The master pings every PingTimeout/2 on the hello
// stream; two intervals without a Pong mark the node down and drop the
// session; the node reconnects by itself. When the master starts, every
// node is down.
//
// With several masters (the config's masterorder, Config.Masters) a
// master refuses a node whose masters it is not among, and a node that
// says its primary is another (Hello.Secondary) is neither mounted nor
// run through node_up: it goes straight to up, marked Secondary, which
// bpstat shows "[up]" and pkg/nodes refuses to everyone. The masters of
// a cluster share the key directory: a pin is read from disk at every
// check, so one another master renewed counts here (pins.go).
//
// # Node identity
//
// Every node has its own ed25519 key, made by the node (bpslave, at its
// first start; on a diskless node that is every boot, in RAM) and never
// sent anywhere. The boot image carries only the master's public key.
// The master pins node ↔ key (pins.go, KeyDir/nodes/N.pub, written
// atomically):
//
//   - first contact: a node with no pin gets the key it presents pinned
//     (trust on first use, logged with its SHA256 fingerprint in node.N);
//   - the pinned key is admitted from the node's address, as before;
//   - another key is refused — the node's session, if any, is not
//     touched — unless the node network-booted (a DHCP request for its
//     MAC, from the DHCP client's port, reached the boot server:
//     Booting) after its pinned key last spoke and it has no session: a
//     rebooted diskless node re-enrolls by booting. Only root on a host
//     can send from that port: a user's job on a node cannot make its
//     node look rebooted (a fetch of a boot file over HTTP, which any
//     user can make, counted until a security audit showed a user on a
//     node taking the node's identity, and root on the master through
//     its relayed clients, across a master restart). A node that crashed re-enrolls once the heartbeat has
//     dropped its old session (it keeps retrying meanwhile);
//   - bpctl -S N --forget-key (root) drops a pin: a replaced board, or a
//     simulated node whose directory was wiped.
//
// Refusals are logged (throttled: slog through pkg/ratelog, node.N at
// most once a minute) with both fingerprints.
//
// What an attacker on the cluster network can and cannot do:
//
//   - It cannot run anything on a node (nodes accept only the master's
//     key), read another node's traffic with the master (TLS), or use
//     the boot image to act as a node: the image holds no private key.
//   - It cannot take over a node that is up, or one that is down and
//     has not network-booted since it last spoke: its key is not the pin
//     (the rogue is refused in one handshake, ~2 ms; test/cluster
//     TestRogueNode).
//   - It can enroll as node N if it takes N's address while N has no
//     session (N down, its connection dropped, the master restarting)
//     and sends a DHCP request with N's MAC from the client port first
//     — the same as answering at N's address when N boots, which no
//     scheme can stop without a secret the node's hardware keeps. It
//     needs root on a host of the cluster network: a user's job on a
//     node cannot do it. Such a takeover ends when the real node
//     boots: it is refused (and logged) or, once the rogue is gone,
//     re-enrolls with a fresh boot.
//   - It can refuse service (flood, ARP games), as on any LAN.
//
// Compared: BProc trusted its private network outright (any host at a
// node address was that node). Warewulf 4 binds a node to an asset key
// read from its firmware, which any host can claim by copying it; beo's
// pin is a key the node made and never sends. SSH's known_hosts is the
// same trust on first use, but a host keeps its key on disk; a diskless
// node cannot, so a network boot stands in for "the same machine".
//
// # Clients
//
// Local clients dial a unix socket; the caller is who SO_PEERCRED says
// (uid, gid, and the supplementary groups read from /proc/PID/status at
// connect). Non-root callers may use only up nodes whose owner, group and
// mode pass the POSIX execute check; root may use any node that is not
// down. Only root changes nodes (bpctl) or the library list (bplib).
//
// Clients on a node reach the master through the node's bpslave, which
// relays each connection on its session (wire.OpClient) with the caller
// its kernel reports; the master serves it as a local client of that
// identity, on that node, with the same checks — and a node's root is
// root, as under BProc (nodeclients.go). For them node -1 is the master:
// their execs and bpcp's master:PATH run here as the caller (local.go).
//
// # Processes
//
// An exec from a client is relayed: the master resolves the program's
// shared-library closure (pkg/elfdeps) reading files as the caller, sends
// the node only the files it lacks (the node caches by content hash), then
// splices the stdio streams of the client and the node. Every running remote
// process is recorded as (node, remote pid, its ghost's pid — the calling
// bpsh's until the ghost is there —, the client's pid, uid, argv) for
// bpstat -p and for signals from the master; so is every child the node
// reports (ghosts.go). If a
// client vanishes while its process runs, the process gets SIGHUP, like a
// terminal hangup. The client learns how many program bytes the node had
// to be sent (wire.Started.Sent): 0 when its cache held the whole closure.
//
// No hop waits for a reply before the process can start: the client opens
// its stdin stream (if any) right behind its exec stream, and the master
// opens the node's exec stream and its stdin stream together; each side
// pairs them with a link.Rendezvous. Output streams are opened by the
// side that has the output, and only when it comes: the node opens a
// process's stdout or stderr stream to the master, which then opens the
// matching stream to the client (link.Outputs on both), so a silent job
// costs each hop no stream but its exec stream. These and the
// relays of clients on the node (OpClient) are the only streams the
// master accepts from a node: an OpAttach for FD 1 or 2 of an exec it
// started on that session and that has not finished, each FD once; any
// other is refused and logged. From a client it takes only FD 0. The closure of a program is
// resolved once per client connection and reused while a stat of each
// file shows it unchanged (memo.go), so `bpsh -a` on a thousand nodes
// walks it and borrows the caller's identity once, not a thousand times.
//
// # A thousand cold nodes
//
// A first `bpsh -a` sends every node the program and its libraries
// (~2.5 MB for true: ~2.5 GB for a thousand nodes). At most MaxSends
// nodes are sent files at once; the others wait their turn without any
// timeout, their exec, stdio and client streams idle meanwhile. Small
// files are read and checked once and then written from memory (blobs.go).
// Nothing on the way times out for being slow: yamux's write timeout is
// link.WriteTimeout (minutes), and a job's client streams are awaited as
// long, since the heartbeat, not a timer, decides that a peer is gone.
//
// # Choices where the issue is silent
//
//   - Ghosts: every remote process, and every child it forks on its
//     node, has a ghost: a tiny process the client (bpsh) starts as its
//     own child (pkg/ghost, pkg/bproc ghosts.go), which ps, pgrep,
//     pstree, top and kill see with the remote command and its node;
//     what it is sent reaches its remote process alone, and it ends as
//     its process did. The master keeps one record per remote process
//     with its ghost's pid (ghosts.go) for bpstat -p / -P and kills by
//     node and pid. The client itself still stands for all its remote
//     processes: kill(1) on it reaches every one (bpsh forwards), Ctrl-Z
//     (SIGTSTP) stops them and SIGCONT resumes them; a SIGSTOP sent
//     straight to bpsh, which it never sees, the master notices by
//     looking at the client's state (ghost.go) and passes on itself.
//   - bplib: the listed libraries are staged (OpStage) to every node when
//     it connects, before node_up runs, and to every connected node when
//     bplib -a adds to the list. A staging failure is logged (slog and
//     node.N) and does not fail the node: programs still bring their
//     whole closure on demand. Deleting from the list does not delete from
//     the nodes' caches.
//   - A user's file work on the master (reading a program's closure,
//     bpcp's sources) runs at most PerUser operations at once, so files
//     that hang (the user's own FUSE mount) cannot pile up master threads;
//     further requests wait their turn (asuser.go).
//   - Only root (and Config.Admin) changes nodes (bpctl) and the library
//     list; anyone may list the library list, the node table and the
//     remote processes.
//   - yamux's own complaints about a peer (malformed frames) are logged
//     with the client's pid and uid or the node's number.
package master

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beo-cluster/beo/pkg/accept"
	"github.com/beo-cluster/beo/pkg/acct"
	"github.com/beo-cluster/beo/pkg/creds"
	"github.com/beo-cluster/beo/pkg/elfdeps"
	"github.com/beo-cluster/beo/pkg/filecache"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/localfs"
	"github.com/beo-cluster/beo/pkg/nodelog"
	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/wire"
)

// NodeDef is one configured node.
type NodeDef struct {
	Num  int
	Addr netip.Addr
	MACs []string
}

// Config is what the master runs on. The applet builds it from
// /etc/beowulf/config; tests build it directly.
type Config struct {
	Nodes       []NodeDef
	PingTimeout time.Duration // two silent PingTimeout/2 intervals → down
	MasterAddr  string        // shown by bpstat -l as node -1; this master in Masters' lists
	// Masters, if set, gives node n's masters, primary first (the
	// config's masterorder); nil or an empty list: this master is its
	// only one. A node whose list does not name MasterAddr is refused;
	// one that says it has its primary elsewhere (Hello.Secondary) is
	// shown "[up]" and neither set up nor used (session.go).
	Masters func(n int) []netip.Addr
	// Peers are the masters Masters names: a connection from one (a boot
	// server asking whether this master is up, pkg/boot) is closed
	// without a log line.
	Peers  []netip.Addr
	Keys   link.Keys // the master's own; Peer unset (nodes are checked against pins)
	KeyDir string    // where node keys are pinned (KeyDir/nodes/N.pub); "" = in memory
	Build  string    // refuse nodes with another build ("" accepts any)
	NodeUp string    // node_up program; "" marks nodes up at once
	LogDir string    // per-node logs node.N; "" = none
	// Accounting is the accounting log: a line per finished job
	// (pkg/acct; "" = none, the master keeps its totals and the latest
	// jobs in memory all the same), rotated past AccountingMax bytes
	// (0 = acct.DefaultMax). Read once, by New.
	Accounting    string
	AccountingMax int64
	LibFile       string // bplib's list of prestaged libraries
	MaxSends      int    // file transfers to nodes at once; 0 = DefaultMaxSends
	ConnsPerUID   int    // client connections one non-root uid may hold; 0 = DefaultConnsPerUID
	// Mounts, if set, gives a connecting node its file systems (its fstab
	// lines, pkg/fstab) and notes for its node.N; the node mounts them
	// while in boot, each within MountTimeout (0 = DefaultMountTimeout),
	// before node_up (mounts.go). An error makes the node error.
	Mounts       func(n int, addr netip.Addr) (ms []wire.Mount, notes []string, err error)
	MountTimeout time.Duration
	// Disks are the config's mkfs and fsck policies, for the lines on
	// local partitions among Mounts (disks.go, pkg/localfs).
	Disks localfs.Policy
	// ResetConns, if set, is called with the address of a node that went
	// down because it stopped answering (no heartbeat), to end the master's
	// processes' TCP connections to it (pkg/tcpreset): a node that lost
	// power never closes them, and mpiexec, mpirun or any client waiting
	// on one would wait for TCP's retransmissions to give up, a quarter of
	// an hour. A session closed or refused (a reconnect, a reboot) is no
	// loss: its node's kernel answers for its own connections.
	ResetConns func(netip.Addr) (int, error)
	// UsrEtc are the master's /etc paths a node whose mounts mirror the
	// master's /usr gets copies of before it mounts (UsrEtc,
	// DefaultUsrEtc); nil = none.
	UsrEtc []string
	Log    *slog.Logger
	Clock  func() time.Time
	// Admin is a uid that may change nodes and the library list as root
	// may: the user who runs a simulated cluster (beo sim). 0 = root only.
	Admin uint32
	// ConfigPath is shown by `beo master status`; Reload, if set, is what
	// `beo master reload` (wire.OpReload, root or Admin) runs: the head
	// node's one reload path (pkg/head).
	ConfigPath string
	Reload     func() error

	// InitD is the directory whose executables run for each node after
	// node_up (initd.go); "" = none. InitDTimeout bounds each one; 0 =
	// DefaultInitDTimeout.
	InitD        string
	InitDTimeout time.Duration
}

// DefaultMaxSends is how many nodes are sent program files at once. The
// others wait their turn (a node that needs nothing never waits): when a
// thousand cold nodes all need libc, sixteen at a time finish in about
// the time all at once would, each node's program starts as soon as its
// own files are in, and the master's memory and scheduler stay calm.
const DefaultMaxSends = 16

// Master is a running bpmaster.
type Master struct {
	log     *slog.Logger
	clock   func() time.Time
	table   *nodes.Table
	hasher  *filecache.Hasher
	ldcache *elfdeps.Cache // the master's /etc/ld.so.cache, read once

	mu       sync.Mutex
	cfg      Config
	byAddr   map[netip.Addr]int
	sessions map[int]*session
	procs    map[uint64]*relay
	forks    map[uint64]*stagedFork // checkpoints awaiting adoption (fork.go)
	libs     []string

	started   time.Time
	nextID    atomic.Uint64
	jobs      jobs
	ledger    *acct.Ledger  // finished jobs (acct.go)
	sends     chan struct{} // one token per file transfer in flight (MaxSends)
	moveSlots chan struct{} // one token per move or fork in flight (move.go maxMoves)
	blobs     blobs
	asUser    asUser // file work as a caller, PerUser at once
	conns     conns  // client connections held, per uid
	pins      pins   // node ↔ key
	initd     initD  // init.d entries already warned about

	// socket is the clients' socket (ServeClients), for BEO_SOCKET (local.go).
	socket atomic.Pointer[string]
}

// New makes a master with every node down.
func New(cfg Config) (*Master, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = 60 * time.Second
	}
	if cfg.MaxSends <= 0 {
		cfg.MaxSends = DefaultMaxSends
	}
	m := &Master{
		log:       cfg.Log,
		clock:     cfg.Clock,
		hasher:    &filecache.Hasher{},
		started:   cfg.Clock(),
		sessions:  map[int]*session{},
		procs:     map[uint64]*relay{},
		forks:     map[uint64]*stagedFork{},
		sends:     make(chan struct{}, cfg.MaxSends),
		moveSlots: make(chan struct{}, maxMoves),
		asUser:    asUser{run: creds.Do},
		conns:     conns{max: cfg.ConnsPerUID},
		pins:      pins{dir: pinDir(cfg.KeyDir)},
		ledger:    acct.NewLedger(acct.Config{Path: cfg.Accounting, Max: cfg.AccountingMax, Log: cfg.Log}),
	}
	ld, err := elfdeps.ReadCache("/")
	if err != nil {
		return nil, fmt.Errorf("read ld.so.cache: %w", err)
	}
	m.ldcache = ld
	m.table = nodes.New(cfg.Clock, tableNodes(cfg.Nodes)...)
	m.setConfig(cfg)
	if err := m.loadLibs(); err != nil {
		return nil, err
	}
	return m, nil
}

// Table is the node table the other daemons of `beo master` share.
func (m *Master) Table() *nodes.Table { return m.table }

// Reconfigure applies a reloaded configuration: nodes that remain keep
// their state; sessions of nodes that vanished are dropped.
func (m *Master) Reconfigure(cfg Config) {
	if cfg.Log == nil {
		cfg.Log = m.log
	}
	if cfg.Clock == nil {
		cfg.Clock = m.clock
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = 60 * time.Second
	}
	m.table.Reconfigure(tableNodes(cfg.Nodes)...)
	m.setConfig(cfg)
	m.mu.Lock()
	var drop []*session
	for n, s := range m.sessions {
		if _, ok := m.byAddr[s.addr]; !ok || m.byAddr[s.addr] != n {
			drop = append(drop, s)
		}
	}
	m.mu.Unlock()
	for _, s := range drop {
		s.close("node no longer configured")
	}
}

func (m *Master) setConfig(cfg Config) {
	by := make(map[netip.Addr]int, len(cfg.Nodes))
	for _, n := range cfg.Nodes {
		by[n.Addr.Unmap()] = n.Num
	}
	m.mu.Lock()
	m.cfg, m.byAddr = cfg, by
	m.mu.Unlock()
}

func (m *Master) config() Config {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg
}

func pinDir(keyDir string) string {
	if keyDir == "" {
		return ""
	}
	return filepath.Join(keyDir, PinDir)
}

func tableNodes(defs []NodeDef) []nodes.Node {
	out := make([]nodes.Node, 0, len(defs))
	for _, d := range defs {
		out = append(out, nodes.Node{Num: d.Num, Addr: d.Addr, MACs: d.MACs})
	}
	return out
}

// ServeNodes accepts bpslave connections on ln until ctx ends. Then it
// ends every session and waits, up to stopWait, for their last words
// (node.N's "down" lines, the nodes' states): a master restarted in the
// same state directory, or a test removing it, does not race them.
func (m *Master) ServeNodes(ctx context.Context, ln net.Listener) error {
	var conns sync.WaitGroup
	defer func() {
		m.closeAll()
		done := make(chan struct{})
		go func() { conns.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopWait):
			m.log.Warn("node sessions still ending", "after", stopWait)
		}
	}()
	// A node keeps one connection; anyone on a node (no privilege
	// needed) can open more from its address, each a handshake for up
	// to 10 s: PerAddr keeps a flood of them to that node's places.
	ln = accept.PerAddr(ln, maxConnsPerNode, m.log, "nodes")
	return accept.Loop(ctx, ln, m.log, "nodes", func(c net.Conn) {
		conns.Add(1)
		go func() {
			defer conns.Done()
			m.nodeConn(ctx, c)
		}()
	})
}

// maxConnsPerNode bounds the connections open at once from one node's
// address: its session, one that replaces it, and handshakes.
const maxConnsPerNode = 8

// stopWait bounds how long ServeNodes waits for the sessions it ended.
const stopWait = 5 * time.Second

func (m *Master) closeAll() {
	m.mu.Lock()
	ss := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		ss = append(ss, s)
	}
	m.mu.Unlock()
	for _, s := range ss {
		s.close("master stopping")
	}
}

// nodeLog appends one line to LogDir/node.N (pkg/nodelog).
func (m *Master) nodeLog(n int, format string, args ...any) {
	l := nodelog.Log{Dir: m.config().LogDir, Who: "bpmaster", Clock: m.clock}
	if err := l.Printf(n, format, args...); err != nil {
		m.log.Warn("node log", "node", n, "err", err)
	}
}
