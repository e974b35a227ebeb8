package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/config"
)

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	Exe string // the beo binary under test (required)
	Dir string // state directory: config, keys, logs, boot files (required)
	// Listed machines have node lines in the config: machine i is node i
	// with MAC(i). Unlisted machines (MAC(100+j)) are not in the config:
	// the boot server assigns them (nodeassign) or records them unknown.
	// The config has as many nodes as machines, listed and unlisted.
	Listed, Unlisted int
	// Config is appended to the generated config (e.g. "nodeassign off").
	Config string
	Kernel string // default: Kernel("/")
	Accel  string // default: ProbeAccel, remembering its verdict in AccelCache
	Memory string // per VM, default 256M
	NIC    string // default virtio-net-pci
	// AccelCache is ProbeAccel's memory (default DefaultAccelCache).
	AccelCache string
	// Boot, when true, runs `beo beoboot` into Dir/boot once the master
	// is up (the boot files carry the node key from the master's key
	// directory); when false the master is expected to build them.
	Boot bool
	// Disks gives machine i a virtio disk of Disks[i] bytes (a sparse raw
	// file, LabDir/vmI.disk, made empty when the cluster starts).
	Disks map[int]int64
	// MasterArgs are extra arguments for `beo master`; QEMUArgs for
	// every machine (VM.Extra).
	MasterArgs, QEMUArgs []string
	// Fstab, if set, is written to Dir/fstab, the fstab the master gives
	// every node (Dir/fstab.N for node N, which a test may write too).
	// The NFS server it needs runs inside the lab's namespace.
	Fstab string
	Log   *slog.Logger
	// Lab options (namespace name, bridge, address); Dir and Log are
	// taken from above.
	Lab Options
}

// Event is a node-state change seen by the cluster's watcher.
type Event struct {
	T     time.Time
	Node  int
	State string
}

// Cluster is a running lab cluster: a master and its machines.
type Cluster struct {
	Lab      *Lab
	Dir      string
	Config   string // the config file the master reads
	Socket   string // bpmaster's client socket: export as BEO_SOCKET
	BootDir  string // beoboot's output, served by the master
	LogDir   string // the master's per-node logs (node.N)
	LabDir   string // the lab's own: master.log, vmI.log, vmI.serial
	Unknown  string // the unknown-addresses file
	Master   *Proc
	Machines []*Machine
	Accel    string
	AccelWhy string

	o      ClusterOptions
	hosts  hostsFile // the names users' commands see (user.go)
	stopW  context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	events []Event
}

// Config returns the config StartCluster writes: the built-in default
// (config.DefaultText) with as many nodes as the lab has machines, a node
// line for each listed MAC, then extra.
func Config(machines int, listed []string, extra string) string {
	var b strings.Builder
	b.WriteString("# written by beo lab: the built-in default, one node per machine\n")
	counted := false
	for _, line := range strings.SplitAfter(config.DefaultText, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "nodes" {
			fmt.Fprintf(&b, "nodes %d\n", machines)
			counted = true
			continue
		}
		b.WriteString(line)
	}
	if !strings.HasSuffix(b.String(), "\n") {
		b.WriteString("\n")
	}
	if !counted {
		fmt.Fprintf(&b, "nodes %d\n", machines)
	}
	for i, mac := range listed {
		fmt.Fprintf(&b, "node %d %s\n", i, mac)
	}
	if extra != "" {
		b.WriteString(strings.TrimRight(extra, "\n") + "\n")
	}
	return b.String()
}

// StartCluster creates the lab, writes the config, starts `beo master` in
// the namespace, waits for its client socket, and boots the machines. On
// error everything started is stopped again.
func StartCluster(ctx context.Context, o ClusterOptions) (c *Cluster, err error) {
	if o.Exe == "" || o.Dir == "" {
		return nil, errors.New("cluster needs Exe and Dir")
	}
	if o.Listed+o.Unlisted < 1 {
		return nil, errors.New("cluster needs at least one machine")
	}
	if err := Check(true); err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Kernel == "" {
		k, _, err := Kernel("/")
		if err != nil {
			return nil, err
		}
		o.Kernel = k
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	c = &Cluster{Dir: dir, Config: filepath.Join(dir, "config"), Socket: filepath.Join(dir, "bpmaster.sock"),
		BootDir: filepath.Join(dir, "boot"), LogDir: filepath.Join(dir, "log"), LabDir: filepath.Join(dir, "lab"),
		Unknown: filepath.Join(dir, "unknown_addresses"), o: o}
	// The boot directory exists before the master starts: beoserv opens
	// it once, at start, and beoboot fills it later (see Boot).
	if err := os.MkdirAll(c.BootDir, 0o755); err != nil {
		return nil, err
	}
	// Every user of the lab reaches its socket, links and MPI directory,
	// as every user of a head node does; the keys stay in DIR/keys (0700).
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.LabDir, 0o755); err != nil {
		return nil, err
	}
	c.Accel, c.AccelWhy = o.Accel, "asked for"
	if c.Accel == "" {
		cache := o.AccelCache
		if cache == "" {
			cache = DefaultAccelCache
		}
		c.Accel, c.AccelWhy = ProbeAccel(ctx, o.Kernel, c.LabDir, cache, ProbeTimeout)
	}
	o.Log.Info("accelerator", "accel", c.Accel, "why", c.AccelWhy)
	var listed []string
	for i := 0; i < o.Listed; i++ {
		listed = append(listed, MAC(i).String())
	}
	if err := os.WriteFile(c.Config, []byte(Config(o.Listed+o.Unlisted, listed, o.Config)), 0o644); err != nil {
		return nil, err
	}
	if o.Fstab != "" {
		if err := os.WriteFile(c.Fstab(), []byte(o.Fstab), 0o644); err != nil {
			return nil, err
		}
	}
	lo := o.Lab
	lo.Dir, lo.Log = c.LabDir, o.Log
	c.Lab, err = New(ctx, lo)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()
	c.Master, err = c.Lab.Start("master", append([]string{o.Exe, "master"}, c.MasterArgs()...), nil)
	if err != nil {
		return c, err
	}
	if err := c.waitMaster(ctx); err != nil {
		return c, err
	}
	if o.Boot {
		// `beo master` builds the boot package (beoboot's work) before it
		// answers; check it did, so no node ever fetches a missing file.
		for _, f := range []string{"kernel", "initrd", "rootfs.cpio"} {
			if _, err := os.Stat(filepath.Join(c.BootDir, f)); err != nil {
				return c, fmt.Errorf("beo master built no boot package: %w", err)
			}
		}
	}
	wctx, cancel := context.WithCancel(context.Background())
	c.stopW = cancel
	c.wg.Add(1)
	go c.watch(wctx)
	for i := 0; i < o.Listed+o.Unlisted; i++ {
		mac := MAC(i)
		if i >= o.Listed {
			mac = MAC(100 + i - o.Listed)
		}
		vm := VM{Name: fmt.Sprintf("vm%d", i), MAC: mac, Accel: c.Accel, Memory: o.Memory, NIC: o.NIC, Extra: o.QEMUArgs}
		if size := o.Disks[i]; size > 0 {
			d, err := c.disk(vm.Name, size)
			if err != nil {
				return c, err
			}
			vm.Disks = []string{d}
		}
		m, err := c.Lab.Boot(ctx, vm)
		if err != nil {
			return c, err
		}
		c.Machines = append(c.Machines, m)
	}
	return c, nil
}

// disk makes LabDir/NAME.disk, an empty sparse file of size bytes.
func (c *Cluster) disk(name string, size int64) (string, error) {
	p := filepath.Join(c.LabDir, name+".disk")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return p, err
}

// MasterArgs are the arguments after `beo master`: every path inside the
// state directory, so the lab touches nothing of the host's /etc or /var.
func (c *Cluster) MasterArgs() []string {
	a := []string{
		"-config", c.Config,
		"-socket", c.Socket,
		"-keys", filepath.Join(c.Dir, "keys"),
		"-logdir", c.LogDir,
		"-libs", filepath.Join(c.Dir, "libraries"),
		"-node-up", "",
		"-bootdir", c.BootDir,
		"-unknown", c.Unknown,
		"-names-root=", // never the host's /etc: nodes get names from kickback
		"-kernel", c.o.Kernel,
		"-fstab", c.Fstab(),
	}
	if _, err := exec.LookPath("ganesha.nfsd"); err == nil {
		// The NFS server runs in the lab's namespace: never the host
		// kernel's nfsd, whose exports file is the host's /etc.
		a = append(a, "-nfs", "ganesha")
	}
	return append(a, c.o.MasterArgs...)
}

// Fstab is the fstab the master reads: Dir/fstab (and Dir/fstab.N).
func (c *Cluster) Fstab() string { return filepath.Join(c.Dir, "fstab") }

// HomeDir is the lab's shared home directory under its state directory
// dir: DefaultFstab makes it every node's /home.
func HomeDir(dir string) string { return filepath.Join(dir, "home") }

// DefaultFstab makes the lab's home directory (HomeDir: mode 1777, like
// /tmp, so every user — and root, whom NFS squashes to nobody on a
// node — may write there) and returns the fstab that has every node
// mount it as /home over NFS from the master (nonfatal: a node whose
// mount fails still comes up, and node.N says why). It is the lab's own
// directory rather than the host's /home: a lab writes nothing outside
// its state directory, and users' real home directories stay out of
// reach of the VMs. Without an NFS server the lab can run (nfs-ganesha:
// the lab never uses the host kernel's nfsd), it returns "" and why.
func DefaultFstab(dir string) (fstab, why string, err error) {
	if _, err := exec.LookPath("ganesha.nfsd"); err != nil {
		return "", "no NFS server for the nodes' /home (install Debian nfs-ganesha nfs-ganesha-vfs)", nil
	}
	home := HomeDir(dir)
	if err := os.MkdirAll(home, 0o755); err != nil {
		return "", "", err
	}
	if err := os.Chmod(home, 0o1777|os.ModeSticky); err != nil {
		return "", "", err
	}
	return "# written by beo lab: every node mounts the lab's home directory from the master\n" +
		"$MASTER:" + home + " /home nfs4 rw,nonfatal\n", "", nil
}

// waitMaster waits until bpmaster answers on its socket, or the master
// exits, or 60 s pass.
func (c *Cluster) waitMaster(ctx context.Context) error { return waitSocket(ctx, c.Master, c.Socket) }

// waitSocket waits until the bpmaster p runs answers on socket, or p
// exits, or 60 s pass.
func waitSocket(ctx context.Context, p *Proc, socket string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		if cl, err := bproc.Dial(ctx, socket); err == nil {
			cl.Close()
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("beo master exited (%v):\n%s", p.Err(), Tail(p.Log, 20))
		case <-ctx.Done():
			return fmt.Errorf("beo master not answering on %s: %w\n%s", socket, ctx.Err(), Tail(p.Log, 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// watch records every node-state change until ctx ends, reconnecting if
// the watch breaks while the master runs.
func (c *Cluster) watch(ctx context.Context) {
	defer c.wg.Done()
	for ctx.Err() == nil {
		cl, err := bproc.Dial(ctx, c.Socket)
		if err == nil {
			st, ch, err := cl.Watch(ctx)
			if err == nil {
				now := time.Now()
				c.mu.Lock()
				for _, n := range st.Nodes {
					c.events = append(c.events, Event{now, n.Node, n.State})
				}
				c.mu.Unlock()
				for n := range ch {
					c.record(n)
				}
			}
			cl.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *Cluster) record(n bproc.NodeInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, Event{time.Now(), n.Node, n.State})
}

// Events returns the node-state changes seen so far.
func (c *Cluster) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// Status returns the master's node table.
func (c *Cluster) Status(ctx context.Context) (bproc.Status, error) {
	cl, err := bproc.Dial(ctx, c.Socket)
	if err != nil {
		return bproc.Status{}, err
	}
	defer cl.Close()
	return cl.Status(ctx)
}

// WaitUp waits until every node in nodes is up, polling the master. The
// error says which nodes are in which state, and quotes the serial tail
// of a machine that exited.
func (c *Cluster) WaitUp(ctx context.Context, nodes ...int) error {
	var last bproc.Status
	for {
		st, err := c.Status(ctx)
		if err == nil {
			last = st
			state := map[int]string{}
			for _, n := range st.Nodes {
				state[n.Node] = n.State
			}
			ok := true
			for _, n := range nodes {
				ok = ok && state[n] == "up"
			}
			if ok {
				return nil
			}
		}
		select {
		case <-c.Master.Done():
			return fmt.Errorf("beo master exited (%v):\n%s", c.Master.Err(), Tail(c.Master.Log, 20))
		case <-ctx.Done():
			return fmt.Errorf("nodes %v not up: %w\n%s", nodes, ctx.Err(), c.describe(last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// describe is a diagnosis for a failed wait: node states, each machine's
// last serial lines, the master's last log lines.
func (c *Cluster) describe(st bproc.Status) string {
	var b strings.Builder
	for _, n := range st.Nodes {
		if n.State != "down" || len(n.MACs) > 0 {
			fmt.Fprintf(&b, "node %d: %s %v\n", n.Node, n.State, n.MACs)
		}
	}
	for _, m := range c.Machines {
		fmt.Fprintf(&b, "%s (%s) serial, last lines:\n%s", m.Name, m.VM.MAC, m.SerialTail(10))
	}
	fmt.Fprintf(&b, "master log, last lines:\n%s\n", Tail(c.Master.Log, 15))
	return b.String()
}

// Close stops the watcher, every machine and the master, and deletes the
// namespace. The state directory stays (it is the caller's).
func (c *Cluster) Close() error {
	if c.stopW != nil {
		c.stopW()
	}
	var err error
	if c.Lab != nil {
		err = c.Lab.Close()
	}
	c.wg.Wait()
	return err
}
