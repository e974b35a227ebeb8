// Package slave is bpslave, the compute node's half of the process space:
// it dials bpmaster, introduces itself, and then does what the master asks
// — run processes, move files, reboot — until the connection ends, when it
// dials again.
//
// # Session
//
// Run dials the master with pkg/link (TLS 1.3 pinned to master.pub, then
// yamux) and opens the hello stream: Header{OpHello, Hello{Version, Build,
// Node, MACs, Hostname}} → HelloReply. A refusal (Err set) is logged and
// retried like any failure. Afterwards the slave answers each Ping with a
// Pong on that stream; three PingIntervals without a Ping, or the stream
// closing, end the session. Run reconnects by itself with exponential
// backoff (100 ms doubling to 5 s, ±50 % jitter, reset by every accepted
// session) until its context ends.
//
// Every other stream but a process's output streams is opened by the
// master and begins with a Header; the slave serves each on its own
// goroutine (see the wire package for the message flow):
//
//   - OpExec runs a process (exec.go): files the slave lacks are fetched by
//     content hash into the cache and placed at Root+path, the process is
//     started as the caller in its own process group, its stdin is bound to
//     the OpAttach stream of the same ID, its stdout and stderr each to an
//     OpAttach stream the slave opens when the first bytes come, signals
//     are delivered to its group, and one Result reports how it ended and
//     which output streams it had.
//   - OpAttach hands a raw stdin stream to the exec with that ID, through
//     a link.Rendezvous that tolerates either arriving first: the master
//     opens it together with the exec stream, and the exec expects it
//     from its first moment, so it waits while its files arrive.
//   - OpPut and OpGet move tar streams, reading and writing as the caller
//     through pkg/creds (file.go).
//   - OpControl carries out reboot, halt or power off through Config.Power
//     once the Result has reached the master (control.go).
//   - OpMount mounts the node's fstab lines, each bounded in time, loading
//     the kernel modules a file system type needs first (mount.go).
//
// Anything else is answered with a Result error; a header that does not
// decode is logged and its stream closed. Nothing a stream carries can stop
// the slave serving the others.
//
// # Clients on the node
//
// With Config.ClientSocket bpslave listens there — the node's own
// /run/beowulf/bpmaster.sock — and relays each client connection (bpsh,
// bpstat, bpcp … run on the node) to the master on its session with the
// caller's identity (wire.OpClient; clients.go). While the node has no
// session, clients are refused at once, saying so.
//
// # Identity
//
// As root, processes run with the caller's uid, gid and groups
// (SysProcAttr.Credential) and file operations borrow the caller's
// filesystem identity (pkg/creds). Not root (a simulated node run by a
// user), the slave acts only for callers with its own uid and refuses the
// others — it never silently runs anything as another user.
//
// # Filesystem view
//
// Config.Root is the node's "/": "/" on a real node, a private directory on
// a simulated one. Paths from the master are cleaned and joined under Root,
// so ".." cannot climb out of it lexically (symlinks inside Root are
// followed as the caller's permissions allow — the master is trusted,
// and file operations run as the caller). On a simulated node the programs
// themselves still see the host's filesystem: their interpreter and
// libraries resolve by absolute path.
//
// # Program files
//

// # Processes and shutdown
//
// The slave waits for each child itself (os.Process.Wait), so it must run
// as its own process — beoclient supervises it as a child — never inside a
// PID 1 whose reaper calls wait4(-1). When Run's context ends the session
// closes, running processes are killed (below), and Run returns once
// every stream handler has finished.
//
// # Jobs
//
// Each job runs in a cgroup of its own (cgroup.go), and no job outlives
// the session that started it: when the session ends for any reason the
// slave kills every job at once, and when bpslave itself dies, whoever
// started it does (orphans.go).
package slave

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beo-cluster/beo/pkg/filecache"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/wire"
)

// Config is what bpslave runs on.
type Config struct {
	// Masters are bpmaster's host:port: one, or several (the config's
	// masterorder), the primary — the master that booted the node —
	// first (see masters.go).
	Masters  []string
	Keys     link.Keys // own = node.key, peer = master.pub
	Node     int       // the node number this slave believes it is; -1 = let the master decide from my address
	Root     string    // the node's filesystem view: "/" on a real node, a private dir on a simulated one
	CacheDir string    // content-addressed file cache (default Root/var/cache/beo)
	Build    string    // build hash reported in Hello
	Log      *slog.Logger
	Dialer   *net.Dialer
	// Power carries out "reboot", "halt" or "pwroff": a real node reboots;
	// a simulated node exits. nil refuses power control.
	Power func(action string) error
	// Cache stores program files by content; nil = filecache.Open(CacheDir).
	Cache *filecache.Cache
	// BeforeExec, if set, runs before a process a root slave starts as a
	// non-root user, with that user's credentials: a real node asks its
	// kickbackproxy for the user's passwd and group entries there. A
	// success holds for that credential for a minute (users.go). An
	// error is logged; the process runs anyway.
	BeforeExec func(ctx context.Context, c wire.Cred) error
	// SpawnExe is a binary that runs Spawn when started as SpawnArg0 (the
	// exec trampoline); default /proc/self/exe, the beo binary itself.
	SpawnExe string
	// Connected, if set, is called each time the master accepts this
	// node, with the number the master knows it by.
	Connected func(node int)
	// LoadModules, if set, loads kernel modules (and their dependencies)
	// before a mount whose type needs them (mount.go); a real node loads
	// them from its initrd's module set (pid1.LoadModules).
	LoadModules func(names ...string) error
	// Mount is mount(2) (swapon(2) for type swap) for OpMount; nil = the
	// system calls. MountInfo is /proc/self/mountinfo unless set. Tests
	// set both.
	Mount     func(source, target, fstype string, flags uintptr, data string) error
	MountInfo string
	// ClientSocket, if set, is where clients on this node (bpsh, bpstat,
	// bpcp …) reach the master through this slave (clients.go): the
	// node's bproc.DefaultSocket, as the node's processes see it.
	ClientSocket string
	// ClientBin, if set, is the directory of this node's client commands
	// (the applet links beside its beo binary): appended to the PATH a
	// job brings when that PATH does not name it, so a script running
	// on the node finds bpcp, bpsh or bpstat by name whatever the
	// master's PATH holds. Last, it shadows nothing the caller has.
	ClientBin string
	// Cgroup is the cgroup v2 directory each job gets a group of its own
	// in (cgroup.go): made by whoever supervises bpslave, which kills it
	// when bpslave dies. "" makes beo-jobs under bpslave's own cgroup;
	// "none" runs jobs without cgroups.
	Cgroup string
	// SpreadPIDs: this node has a kernel of its own (a real node):
	// give its jobs a pid range of their own (pids.go).
	SpreadPIDs bool
	// JobSessions: each job leads a session of its own, as moves need
	// (exec.go jobSys); a real node's bpslave sets it, beo sim's do not.
	JobSessions bool
	// UsageInterval is how often a running job's accounting is sent to
	// the master after the first, a second in (usage.go); 0 =
	// DefaultUsageInterval.
	UsageInterval time.Duration
}

// Backoff bounds between connection attempts.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Run serves the master (cfg.Masters) until ctx ends, reconnecting
// whenever a session ends. It returns nil when ctx ends, or an error if
// cfg cannot work at all.
func Run(ctx context.Context, cfg Config) error {
	if len(cfg.Masters) == 0 || slices.Contains(cfg.Masters, "") {
		return errors.New("bpslave: no master address")
	}
	for i, m := range cfg.Masters {
		if slices.Contains(cfg.Masters[:i], m) {
			return fmt.Errorf("bpslave: master %s listed twice", m)
		}
	}
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return fmt.Errorf("bpslave: root %s: %w", cfg.Root, err)
	}
	cfg.Root = root
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(cfg.Root, "var/cache/beo")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.SpawnExe == "" {
		cfg.SpawnExe = "/proc/self/exe"
	}
	inheritLimits()
	direct, err := jobSignals()
	if err != nil {
		cfg.Log.Warn("bpslave: signal dispositions unknown; every job starts through the exec trampoline", "err", err)
	} else if !direct {
		cfg.Log.Info("bpslave started with signals blocked or ignored for good; every job starts through the exec trampoline")
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 15 * time.Second}
	}
	if cfg.Cache == nil {
		c, err := filecache.Open(cfg.CacheDir)
		if err != nil {
			return fmt.Errorf("bpslave: %w", err)
		}
		cfg.Cache = c
	}
	s := &slave{
		cfg: cfg, log: cfg.Log, root: os.Geteuid() == 0, uid: uint32(os.Geteuid()), spawnAll: !direct,
		placer: &placer{root: cfg.Root, cache: cfg.Cache},
		jobs:   openJobs(cfg.Cgroup, cfg.Log),
	}
	defer s.jobs.close()
	if s.root && s.jobs.base != "" { // children are found in the jobs' cgroups (kids.go)
		s.exits = openExits(ctx, cfg.Log)
	}
	defer s.work.Wait() // every stream handler and process watcher
	if cfg.ClientSocket != "" {
		s.serveClients(ctx)
	}
	for i := 1; i < len(cfg.Masters); i++ {
		s.work.Add(1)
		go func() {
			defer s.work.Done()
			s.secondary(ctx, i)
		}()
	}
	s.servePrimary(ctx)
	return nil
}

// jitter spreads d over [d/2, 3d/2) so a rack of nodes does not redial in
// lockstep after the master restarts.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

// slave is the state shared by every session of one Run.
type slave struct {
	cfg  Config
	log  *slog.Logger
	root bool   // running as root: may act as any user
	uid  uint32 // own effective uid
	// spawnAll sends every job through the exec trampoline: a direct
	// start would pass on signals bpslave inherited (signals.go).
	spawnAll bool
	work     sync.WaitGroup

	placer  *placer
	mirrors atomic.Pointer[[]string] // node paths holding the master's own trees (mount.go)

	cur atomic.Pointer[session] // the session with the primary master, nil between sessions
	// interval is the primary master's ping interval, as it last said
	// (time.Duration); seen counts the secondary masters connected now
	// (masters.go).
	interval atomic.Int64
	seen     atomic.Int32
	// reparentOnce: "cannot re-parent" is said once.
	reparentOnce sync.Once
	lastErr      atomic.Pointer[string] // why the last session ended or failed
	jobs         *jobGroups             // each job's cgroup (cgroup.go)
	exits        *exitLog               // the node's recent process exits, for children's ghosts (exits.go); nil: unknown
	live         live                   // the jobs running (orphans.go)

	small     smallSpawner // the small exec trampoline (spawn_small.go)
	smallWarn sync.Once
	users     knownUsers // the jobs' users BeforeExec made known (users.go)
}
