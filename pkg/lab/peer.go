package lab

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
)

// Peer is another host on the lab's cluster network: a network namespace
// of its own (NS), joined to the lab's bridge by a veth pair whose end
// inside is named like the bridge, so a beo master there finds the
// interface the config names. Its processes are the lab's: Close stops
// them and deletes the namespace.
type Peer struct {
	NS   string
	Addr netip.Prefix
	lab  *Lab
}

// Peer creates host name (NS = the lab's namespace + "-" + name) with
// address addr on the cluster network.
func (l *Lab) Peer(ctx context.Context, name string, addr netip.Prefix) (*Peer, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("lab is closed")
	}
	p := &Peer{NS: l.NS + "-" + name, Addr: addr, lab: l}
	outer := "vp" + strconv.Itoa(len(l.peers)) // the lab's end, enslaved to the bridge
	l.peers = append(l.peers, p.NS)            // Close deletes it, made or not
	l.mu.Unlock()
	steps := [][]string{
		{"netns", "add", p.NS},
		{"-n", p.NS, "link", "set", "lo", "up"},
		{"-n", l.NS, "link", "add", outer, "type", "veth", "peer", "name", l.Bridge, "netns", p.NS},
		{"-n", l.NS, "link", "set", outer, "master", l.Bridge, "up"},
		{"-n", p.NS, "addr", "add", addr.String(), "dev", l.Bridge},
		{"-n", p.NS, "link", "set", l.Bridge, "up"},
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return nil, err
		}
	}
	l.log.Info("peer host ready", "ns", p.NS, "addr", addr)
	return p, nil
}

// Start runs argv in the peer's namespace, as Lab.Start does in the
// lab's.
func (p *Peer) Start(name string, argv []string, env []string) (*Proc, error) {
	return p.lab.start(p.NS, name, argv, env, nil)
}

// StartMaster starts a second `beo master` of the cluster on peer p, as
// an admin adds a master to a Scyld cluster: the first master's
// arguments (MasterArgs: the same config file, whose masterorder lines
// say which nodes each master has; the same key directory, with the
// cluster's master key and node pins, which the masters of a cluster
// share; the same fstab, served by an NFS server of its own), but for
// its socket, logs, boot package and unknown-addresses file, which are
// its own under Dir/NAME. Its socket is returned once it answers.
func (c *Cluster) StartMaster(ctx context.Context, p *Peer, name string) (proc *Proc, socket string, err error) {
	dir := filepath.Join(c.Dir, name)
	socket = filepath.Join(dir, "bpmaster.sock")
	boot := filepath.Join(dir, "boot")
	if err := os.MkdirAll(boot, 0o755); err != nil {
		return nil, "", err
	}
	// The last of a repeated flag wins.
	args := append([]string{c.o.Exe, "master"}, c.MasterArgs()...)
	args = append(args,
		"-socket", socket,
		"-logdir", filepath.Join(dir, "log"),
		"-bootdir", boot,
		"-unknown", filepath.Join(dir, "unknown_addresses"))
	proc, err = p.Start(name, args, nil)
	if err != nil {
		return nil, "", err
	}
	if err := waitSocket(ctx, proc, socket); err != nil {
		return proc, socket, err
	}
	return proc, socket, nil
}
