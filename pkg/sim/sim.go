// Package sim runs a simulated cluster on one machine: an in-process
// bpmaster plus one real bpslave process per node, each dialing from its
// own loopback address (node N = 127.1.0.0 + N, so up to 65 536 nodes) and
// keeping its filesystem view (bpcp targets, the file cache) in a private
// directory DIR/nodes/N, which starts with the directories a real node's
// rootfs has for users (/tmp, /var/tmp, /root, /home). Everything else is the real code path: TLS, the
// node-address check, node_up, heartbeats, process relay.
//
// The user who runs the simulation is its administrator: the master lets
// that uid change nodes and the library list (bpctl, bplib) as it lets
// root. With Options.Stats the master also runs recvstats and the
// beostatus dashboard on loopback (Cluster.StatsURL, for beostat's
// $BEOSTAT_URL), and every node's bpslave sends its stats there once
// connected (bpslave -stats) — the host's /proc, as each node's programs
// see the host.
//
// As root, each simulated node runs in a view of its own (view.go): the
// host's file system with the node's directory as an overlay on top, so
// its jobs see what bpcp wrote and write only into DIR/nodes/N. Without
// root, programs a node runs see the host's filesystem (only bpcp and
// the cache use the private directory). bpctl -R/-H/-P make the node's bpslave exit instead of rebooting the host
// — the simulation restarts it after a second, as a rebooting node would
// come back. Each node's jobs run in cgroups of a group the simulation
// makes for it and kills when the node's bpslave exits (cgroup.go). Each simulated node makes its own key in
// DIR/nodes/N/etc/beowulf/keys, where a real node keeps it, and the
// master pins it as it does a real node's. RestartMaster stops the in-process master and starts a new
// one on the same addresses (a master restart: every node starts down and
// reconnects by itself). With Options.Masters several masters run, each
// on its own loopback address, and every node connects to all of them:
// StopMaster and StartMaster take one away and bring it back.
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/cgroup"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/head"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/mpi"
	"github.com/beo-cluster/beo/pkg/stats"
)

// Base is node 0's address; node N dials from Base + N.
var Base = netip.MustParseAddr("127.1.0.0")

// Options configure a simulated cluster.
type Options struct {
	Nodes       int
	Dir         string        // state directory; created if missing
	Exe         string        // the beo binary to run as bpslave (default: this executable)
	PingTimeout time.Duration // default 20 s
	NodeUp      string        // optional node_up program
	InitD       string        // optional init.d directory (run after node_up)
	Log         *slog.Logger
	// Stats runs recvstats and the dashboard, and has every node send
	// stats every StatsInterval (default StatsIntervalFor(Nodes)).
	// HostView runs every node in the host's own view even as root (no
	// per-node overlay; view.go): what benchmarks that empty node caches
	// from outside need.
	HostView      bool
	Stats         bool
	StatsInterval time.Duration
	// MPIMTL is the OpenMPI mtl parameter of the launchers' settings
	// (head.Options.MPIMTL).
	MPIMTL string
	// Masters is how many masters run (default 1), each in this process
	// on a loopback address of its own (master i at MasterAddr(i), the
	// config's port); with more than one the config gets `masterorder -`
	// and their addresses, the first primary. Master i > 0 keeps its
	// state in DIR/masterI, but for the key directory, which the masters
	// of a cluster share (see pkg/config, "Multiple masters").
	Masters int
}

// MasterAddr is simulated master i's address: 127.0.0.1 + i.
func MasterAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, byte(1 + i)}) }

// StatsIntervalFor is the stats interval of an n-node simulation: the
// 5 s of a real node, longer from 64 nodes on, so that the host reads
// /proc for all of them about 13 times a second at most.
func StatsIntervalFor(n int) time.Duration {
	return max(stats.DefaultInterval, time.Duration(n)*75*time.Millisecond)
}

// Cluster is a running simulation.
type Cluster struct {
	Socket string // export as BEO_SOCKET for clients (master 0's)
	Dir    string
	Master string // master 0's node listener, host:port
	// With Options.Stats: the dashboard's URL (export as BEOSTAT_URL) and
	// recvstats' address, host:port; else "".
	StatsURL, Stats string
	opts            Options

	views bool         // each node runs in its own view of the host (view.go): needs root
	cg    cgroup.Group // the nodes' jobs groups (cgroup.go); "" = none

	mu     sync.Mutex
	slaves map[int]*exec.Cmd
	wg     sync.WaitGroup
	stop   context.CancelFunc // ends the node supervisors
	ctx    context.Context    // the nodes' context

	mmu     sync.Mutex
	masters []*simMaster // by index; master 0 is Master and Socket
	cfgPath string
}

// simMaster is one of the simulation's masters.
type simMaster struct {
	listen, socket, dir string             // dir: its state (logs, libraries, MPI files)
	stop                context.CancelFunc // ends it; nil when stopped
	done                chan error         // its result
}

// Views reports whether each node runs in its own view (view.go).
func (c *Cluster) Views() bool { return c.views }

// NodeAddr returns simulated node n's address.
func NodeAddr(n int) netip.Addr {
	b := Base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Config returns the /etc/beowulf/config text of an n-node simulation.
func Config(n int, port int, ping time.Duration) string {
	return fmt.Sprintf("# simulated cluster written by `beo sim`\nnodes %d\niprange %s %s\nserver bproc %d\npingtimeout %d\n",
		n, NodeAddr(0), NodeAddr(n-1), port, int(ping.Seconds()))
}

// Start writes the config, starts the master and every node, and returns
// once the master listens (nodes come up on their own; see WaitUp).
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.Nodes < 1 || o.Nodes > 65536 {
		return nil, fmt.Errorf("sim: %d nodes: want 1 to 65536", o.Nodes)
	}
	if o.PingTimeout == 0 {
		o.PingTimeout = 20 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
		o.Exe = exe
	}
	if c, err := net.DialTimeout("unix", filepath.Join(o.Dir, "bpmaster.sock"), time.Second); err == nil {
		c.Close() // before a byte of its directory is touched
		return nil, fmt.Errorf("sim: %s is in use by a running simulation (its bpmaster answers)", o.Dir)
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "nodes"), 0o755); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	// Reserve a port for the node listener: the config must name it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var statsAddr, statusAddr string
	if o.Stats {
		if o.StatsInterval <= 0 {
			o.StatsInterval = StatsIntervalFor(o.Nodes)
		}
		if statsAddr, statusAddr, err = statsPorts(); err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
	}
	if o.Masters < 1 {
		o.Masters = 1
	}
	var masters []netip.Addr
	for i := range o.Masters {
		masters = append(masters, MasterAddr(i))
	}
	text := Config(o.Nodes, port, o.PingTimeout) + config.MasterOrderLine(masters...)
	cfgPath := filepath.Join(o.Dir, "config")
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	c := &Cluster{Socket: filepath.Join(o.Dir, "bpmaster.sock"), Dir: o.Dir, opts: o, cfgPath: cfgPath,
		Master: fmt.Sprintf("127.0.0.1:%d", port), slaves: map[int]*exec.Cmd{}, views: os.Geteuid() == 0 && !o.HostView}
	for i := range o.Masters {
		m := &simMaster{listen: netip.AddrPortFrom(MasterAddr(i), uint16(port)).String(), socket: c.Socket, dir: o.Dir}
		if i > 0 {
			m.dir = filepath.Join(o.Dir, "master"+strconv.Itoa(i))
			m.socket = filepath.Join(m.dir, "bpmaster.sock")
		}
		c.masters = append(c.masters, m)
	}
	if !c.views {
		o.Log.Info("sim: no node views", "why", errNoView)
	}
	if o.Stats {
		c.Stats, c.StatsURL = statsAddr, "http://"+statusAddr
	}
	c.ctx, c.stop = context.WithCancel(ctx)
	c.cg = makeGroups(o.Log)
	for i := range c.masters {
		if err := c.StartMaster(i); err != nil {
			c.Stop()
			return nil, err
		}
	}
	for n := 0; n < o.Nodes; n++ {
		if err := c.startNode(c.ctx, n); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// StartMaster runs master i in this process and returns once it
// listens; a master already running is left alone.
func (c *Cluster) StartMaster(i int) error {
	c.mmu.Lock()
	m := c.masters[i]
	running := m.stop != nil
	c.mmu.Unlock()
	if running {
		return nil
	}
	mctx, cancel := context.WithCancel(c.ctx)
	done := make(chan error, 1)
	ready := make(chan struct{})
	o := c.opts
	ho := head.Options{
		Config: c.cfgPath, Listen: m.listen, Socket: m.socket,
		Keys: filepath.Join(c.Dir, "keys"), LogDir: filepath.Join(m.dir, "log"), // the masters share their keys
		NodeUp: o.NodeUp, InitD: o.InitD, Libs: filepath.Join(m.dir, "libraries"), Log: o.Log.With("master", i),
		Admin: uint32(os.Getuid()), // the user running the simulation administers it
		Exe:   o.Exe, MPIDir: filepath.Join(m.dir, "mpi"), MPIMTL: o.MPIMTL,
		Ready: func(net.Addr, string) { close(ready) },
	}
	if i == 0 {
		ho.Log = o.Log
		ho.Stats, ho.Status = c.Stats, strings.TrimPrefix(c.StatsURL, "http://")
	}
	go func() {
		h, err := head.New(mctx, ho)
		if err == nil {
			err = h.Serve(mctx)
		}
		done <- err
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		return fmt.Errorf("sim: master %d: %w", i, err)
	}
	c.mmu.Lock()
	m.stop, m.done = cancel, done
	c.mmu.Unlock()
	return nil
}

// MasterSocket is master i's client socket (Socket for master 0).
func (c *Cluster) MasterSocket(i int) string { return c.masters[i].socket }

// MPIDir is the MPI launchers' directory the master keeps (pkg/mpi):
// DIR/mpi.
func (c *Cluster) MPIDir() string { return filepath.Join(c.Dir, "mpi") }

// MPIEnv is the environment that points the stock mpirun (OpenMPI) and
// mpirun.mpich (hydra) at the simulated nodes: what MPIDir's env.sh
// exports.
func (c *Cluster) MPIEnv() []string { return mpi.DirEnv(c.MPIDir()) }

// RestartMaster stops master 0 and starts a new one on the same
// addresses, as a master host restarting bpmaster would; every node is
// down in the new master until it reconnects by itself.
func (c *Cluster) RestartMaster() error {
	if err := c.StopMaster(0); err != nil {
		return err
	}
	return c.StartMaster(0)
}

// StopMaster stops master i (a master host going away); StartMaster
// starts it again.
func (c *Cluster) StopMaster(i int) error {
	c.mmu.Lock()
	m := c.masters[i]
	stop, done := m.stop, m.done
	m.stop, m.done = nil, nil
	c.mmu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	err := <-done
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// Cgroup returns the cgroup v2 group node n's jobs run in (each in a
// child of its own), "" when the simulation runs them without cgroups.
func (c *Cluster) Cgroup(n int) string {
	if c.cg == "" {
		return ""
	}
	return filepath.Join(string(c.cg), "node"+strconv.Itoa(n))
}

// Slave returns the pid of node n's bpslave process, 0 if none runs.
func (c *Cluster) Slave(n int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cmd := c.slaves[n]; cmd != nil && cmd.Process != nil {
		return cmd.Process.Pid
	}
	return 0
}

// startNode starts node n's bpslave and restarts it when it exits (a
// simulated reboot) until the cluster stops.
func (c *Cluster) startNode(ctx context.Context, n int) error {
	root := filepath.Join(c.Dir, "nodes", strconv.Itoa(n))
	if err := nodeDirs(root); err != nil {
		return fmt.Errorf("sim: node %d: %w", n, err)
	}
	logf, err := os.OpenFile(filepath.Join(c.Dir, "nodes", strconv.Itoa(n)+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("sim: node %d: %w", n, err)
	}
	keys, err := nodeKeyDir(filepath.Join(c.Dir, "keys"), root)
	if err != nil {
		return fmt.Errorf("sim: node %d: %w", n, err)
	}
	jobs, err := nodeGroup(c.cg, n)
	if err != nil {
		return fmt.Errorf("sim: node %d: %w", n, err)
	}
	cgArg := string(jobs)
	if jobs == "" {
		cgArg = "none"
	}
	args := []string{"bpslave", "-sim", "-m", c.nodeMasters(), "-n", strconv.Itoa(n),
		"-src", NodeAddr(n).String(), "-keys", keys, "-root", root, "-cgroup", cgArg}
	if c.views {
		args = append(args, "-view")
	}
	if c.Stats != "" {
		args = append(args, "-stats", c.Stats, "-stats-interval", c.opts.StatsInterval.String(),
			"-usage-interval", max(c.opts.StatsInterval, 100*time.Millisecond).String())
	}
	cmd := exec.Command(c.opts.Exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if c.views {
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS} // for its node view (view.go)
	}
	// Small Go runtimes: a thousand of these share two cores.
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "GOGC=100")
	// No Pdeathsig: it fires when the forking *thread* exits (bpslave -sim
	// watches its parent instead).
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("sim: node %d: %w", n, err)
	}
	c.mu.Lock()
	c.slaves[n] = cmd
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		cmd.Wait()
		if jobs != "" { // no job outlives its node (cgroup.go)
			if err := jobs.Kill(); err != nil {
				c.opts.Log.Error("kill the node's jobs", "node", n, "err", err)
			}
		}
		logf.Close()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if err := c.startNode(ctx, n); err != nil {
			c.opts.Log.Error("restart failed", "node", n, "err", err)
		}
	}()
	return nil
}

// nodeMasters is bpslave's -m for a node starting now: the first master
// that runs, as the first boot server up would have booted it (its
// primary: pkg/slave masters.go), then the others in order.
func (c *Cluster) nodeMasters() string {
	c.mmu.Lock()
	defer c.mmu.Unlock()
	var first []string
	var rest []string
	for _, m := range c.masters {
		if first == nil && m.stop != nil {
			first = []string{m.listen}
		} else {
			rest = append(rest, m.listen)
		}
	}
	return strings.Join(append(first, rest...), ",")
}

// Kill kills node n's bpslave (a crashed node); it comes back after a second.
func (c *Cluster) Kill(n int) error {
	c.mu.Lock()
	cmd := c.slaves[n]
	c.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return fmt.Errorf("sim: node %d not running", n)
	}
	return cmd.Process.Kill()
}

// Crash kills node n's bpslave and, at the same time, every process it
// started (its descendants, found in /proc): a node that loses power,
// whose jobs end with it. (Kill leaves them running on the host, which
// a real node's crash never does.) The node comes back after a second.
func (c *Cluster) Crash(n int) error {
	pid := c.Slave(n)
	if pid == 0 {
		return fmt.Errorf("sim: node %d not running", n)
	}
	pids := append([]int{pid}, descendants(pid)...)
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGSTOP) // none forks or reacts while the others die
	}
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGKILL)
	}
	return nil
}

// descendants returns the pids of every process below pid, from /proc.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, ch := range children[p] {
			out = append(out, ch)
			queue = append(queue, ch)
		}
	}
	return out
}

// WaitUp waits until want nodes are up, or ctx ends.
func (c *Cluster) WaitUp(ctx context.Context, want int) error {
	cl, err := bproc.Dial(ctx, c.Socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		up := 0
		for _, n := range st.Nodes {
			if n.State == "up" {
				up++
			}
		}
		if up >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sim: %d of %d nodes up: %w", up, want, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitStats waits until want nodes have sent stats (Options.Stats), or
// ctx ends.
func (c *Cluster) WaitStats(ctx context.Context, want int) error {
	if c.StatsURL == "" {
		return errors.New("sim: started without stats")
	}
	for {
		got := 0
		snap, err := dashboard.Fetch(ctx, nil, c.StatsURL, "")
		if err == nil {
			for _, n := range snap.Nodes {
				if n.Stats != nil {
					got++
				}
			}
			if got >= want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sim: stats from %d of %d nodes (%v): %w", got, want, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// statsPorts picks free loopback addresses for recvstats (UDP) and the
// dashboard (TCP); the master binds them when it starts.
func statsPorts() (udp, tcp string, err error) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	udp = pc.LocalAddr().String()
	pc.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	tcp = l.Addr().String()
	l.Close()
	return udp, tcp, nil
}

// Stop ends the masters and every node it started, by pid.
func (c *Cluster) Stop() error {
	var errs []error
	for i := range c.masters {
		errs = append(errs, c.StopMaster(i))
	}
	err := errors.Join(errs...)
	c.stop()
	c.mu.Lock()
	for _, cmd := range c.slaves {
		if cmd.Process != nil {
			cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	c.mu.Unlock()
	waited := make(chan struct{})
	go func() { c.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		c.mu.Lock()
		for _, cmd := range c.slaves {
			if cmd.Process != nil {
				cmd.Process.Kill()
			}
		}
		c.mu.Unlock()
		<-waited
	}
	if c.cg != "" {
		if cerr := c.cg.Remove(5 * time.Second); cerr != nil {
			c.opts.Log.Warn("simulation group", "err", cerr)
		}
	}
	return err
}

// nodeDirs makes a simulated node's filesystem view with the directories
// a real node's rootfs has for users (initramfs/rootfs.go), so that
// `bpcp f 3:/tmp/f` or a job's `cd /tmp` works there as on a real node.
func nodeDirs(root string) error {
	for _, d := range []struct {
		name string
		perm os.FileMode
	}{{"", 0o755}, {"tmp", os.ModeSticky | 0o777}, {"var/tmp", os.ModeSticky | 0o777}, {"root", 0o700}, {"home", 0o755}} {
		p := filepath.Join(root, d.name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, d.perm); err != nil { // past the umask
			return err
		}
	}
	return nil
}

// nodeKeyDir makes a simulated node's key directory, ROOT/etc/beowulf/keys,
// where a real node has it, holding the master's public key; the node's
// bpslave makes its own key there the first time and keeps it.
func nodeKeyDir(masterKeys, root string) (string, error) {
	pub, err := os.ReadFile(filepath.Join(masterKeys, link.MasterPubFile))
	if err != nil {
		return "", err
	}
	// etc and etc/beowulf as a real node has them, readable by all: in
	// the node's view (view.go) this etc is the upper layer of the host's
	// /etc, and a 0700 one would hide /etc/hosts, /etc/passwd and
	// /etc/alternatives from every user but root.
	for _, d := range []string{"etc", "etc/beowulf"} {
		p := filepath.Join(root, d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return "", err
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return "", err
		}
	}
	dir := filepath.Join(root, "etc", "beowulf", "keys")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, link.MasterPubFile), pub, 0o644)
}
