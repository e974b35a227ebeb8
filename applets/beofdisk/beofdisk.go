// Package beofdisk implements beofdisk, Scyld's tool for the compute
// nodes' local disks:
//
//	beofdisk -d [-f FDISK] [-n NODES]   write the default FDISK for the disks the nodes report
//	beofdisk -w [-f FDISK] [-n NODES]   write FDISK's partition tables to the nodes' disks
//	beofdisk -s [-config FILE] [-fstab FSTAB] [-n NODES]
//	                                     make/check (mkfs, fsck policies), mount and swap on
//	                                     the nodes' local fstab lines
//
// NODES is a node spec (default allup). FDISK is /etc/beowulf/fdisk (see
// pkg/fdisk for its format); FSTAB is /etc/beowulf/fstab, FSTAB.N for node
// N when it exists (pkg/fstab). A node does the same for its fstab's
// local lines as it boots (pkg/localfs: the master prepares them in the
// node's mount step); -s is for nodes that are up, after an fstab or
// fdisk change. -w asks every node for its disks and plans every
// table before writing any: a layout that does not fit a disk is refused
// and nothing is written anywhere. A disk no section matches is left as
// it is.
//
// The work on a node is done by this same binary, which bpsh ships there
// like any program, through flags meant for that (pkg/fdisk, pkg/localfs):
//
//	beofdisk -disks                      list this machine's disks: NAME BYTES SECTOR
//	beofdisk -apply DEV < SECTION        write one section's table to DEV
//	beofdisk -probe DEV                  print DEV's signature: none|ext|swap [in-use]
//	beofdisk -mount DEV DIR TYPE OPTS    mount (mkdir DIR first)
//	beofdisk -swapon DEV                 turn swap on
package beofdisk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/atomicfile"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/fdisk"
	"github.com/beo-cluster/beo/pkg/fstab"
	"github.com/beo-cluster/beo/pkg/localfs"
	"github.com/beo-cluster/beo/pkg/nodespec"
	"github.com/beo-cluster/beo/pkg/pid1"
)

const usage = "usage: beofdisk -d|-w|-s [-f fdisk] [-config file] [-fstab file] [-n nodes]"

// FstabPath is the node filesystem table -s reads (pkg/fstab).
const FstabPath = fstab.DefaultPath

type opts struct {
	def, write, setup                  bool
	file, cfg, fstab, nodes            string
	disks, apply, probe, mount, swapon bool
}

// Run is the beofdisk applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	var o opts
	fl := applets.NewFlagSet("beofdisk", usage, stdio.Err)
	fl.BoolVar(&o.def, "d", false, "write the default "+fdisk.Path+" for the disks the nodes report")
	fl.BoolVar(&o.write, "w", false, "write the partition tables to the nodes' disks")
	fl.BoolVar(&o.setup, "s", false, "make or check (config mkfs/fsck), mount and swap on the local lines of the nodes' fstab")
	fl.StringVar(&o.file, "f", fdisk.Path, "the partition table file")
	fl.StringVar(&o.cfg, "config", config.DefaultPath, "the cluster config (mkfs and fsck policies)")
	fl.StringVar(&o.fstab, "fstab", FstabPath, "the node filesystem table (FILE.N wins for node N)")
	fl.StringVar(&o.nodes, "n", "allup", "the nodes")
	fl.BoolVar(&o.disks, "disks", false, "(on a node) list the disks")
	fl.BoolVar(&o.apply, "apply", false, "(on a node) write the section on stdin to DEV")
	fl.BoolVar(&o.probe, "probe", false, "(on a node) print DEV's signature")
	fl.BoolVar(&o.mount, "mount", false, "(on a node) mount DEV DIR TYPE OPTS")
	fl.BoolVar(&o.swapon, "swapon", false, "(on a node) swapon DEV")
	if err := applets.ParseFlags(fl, usage, args); err != nil {
		return err
	}
	pos := fl.Args()
	need := func(n int, what string) error {
		if len(pos) != n {
			return &applets.Usage{Line: usage, Msg: "want " + what}
		}
		return nil
	}
	modes := 0
	for _, b := range []bool{o.def, o.write, o.setup, o.disks, o.apply, o.probe, o.mount, o.swapon} {
		if b {
			modes++
		}
	}
	if modes != 1 {
		return &applets.Usage{Line: usage, Msg: "give one of -d, -w, -s"}
	}
	switch {
	case o.disks:
		return listDisks(stdio.Out)
	case o.apply:
		if err := need(1, "-apply DEV"); err != nil {
			return err
		}
		return applyStdin(pos[0], stdio)
	case o.probe:
		if err := need(1, "-probe DEV"); err != nil {
			return err
		}
		f, err := localfs.ProbeDevice(pos[0], "/proc/mounts", "/proc/swaps")
		if err != nil {
			return err
		}
		fmt.Fprintln(stdio.Out, f)
		return nil
	case o.mount:
		if err := need(4, "-mount DEV DIR TYPE OPTS"); err != nil {
			return err
		}
		return localfs.Mount(pos[0], pos[1], pos[2], pos[3], "/proc/mounts", pid1.LoadModules)
	case o.swapon:
		if err := need(1, "-swapon DEV"); err != nil {
			return err
		}
		return localfs.Swapon(pos[0], "/proc/swaps")
	}
	if err := need(0, "no arguments (nodes go after -n)"); err != nil {
		return err
	}
	cl, err := bproc.Dial(ctx, "")
	if err != nil {
		return err
	}
	defer cl.Close()
	st, err := cl.States(ctx)
	if err != nil {
		return err
	}
	list, err := nodespec.Parse(o.nodes, st)
	if err != nil {
		return &applets.Usage{Line: usage, Msg: err.Error()}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	nodes := make([]*node, 0, len(list))
	for _, n := range list {
		if n >= 0 {
			nodes = append(nodes, &node{localfs.Remote{Client: cl, Node: n, SelfPath: self}, n})
		}
	}
	if len(nodes) == 0 {
		return errors.New("no nodes (are any up?)")
	}
	switch {
	case o.def:
		return writeDefault(ctx, nodes, o.file, stdio)
	case o.write:
		return writeTables(ctx, nodes, o.file, stdio)
	}
	return setup(ctx, nodes, o, stdio)
}

// node is a node to partition or set up: a localfs.Node on the process
// space, with its number.
type node struct {
	localfs.Remote
	n int
}

// listDisks prints NAME BYTES SECTOR for each disk of this machine.
func listDisks(w io.Writer) error {
	ds, err := fdisk.List("/sys/block")
	if err != nil {
		return err
	}
	for _, d := range ds {
		sector := 512
		if b, err := os.ReadFile(filepath.Join("/sys/block", d.Name, "queue/logical_block_size")); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
				sector = n
			}
		}
		fmt.Fprintf(w, "%s %d %d\n", d.Name, d.Size, sector)
	}
	return nil
}

// disk is a disk a node reported.
type disk struct {
	fdisk.Info
	Sector int64
}

func (x *node) disks(ctx context.Context) ([]disk, error) {
	status, out, err := x.Run(ctx, localfs.Self, "beofdisk", "-disks")
	if err != nil || status != 0 {
		return nil, fmt.Errorf("node %d: list disks: exit %d %v: %s", x.n, status, err, strings.TrimSpace(string(out)))
	}
	var ds []disk
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		size, err1 := strconv.ParseInt(f[1], 10, 64)
		sector, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("node %d: bad disk line %q", x.n, l)
		}
		ds = append(ds, disk{fdisk.Info{Name: f[0], Size: size}, sector})
	}
	return ds, nil
}

func writeDefault(ctx context.Context, nodes []*node, path string, stdio applets.IO) error {
	var all []fdisk.Info
	for _, x := range nodes {
		ds, err := x.disks(ctx)
		if err != nil {
			return err
		}
		for _, d := range ds {
			all = append(all, d.Info)
		}
	}
	f := fdisk.Default(all)
	if len(f.Disks) == 0 {
		return errors.New("no node reports a disk")
	}
	if err := atomicfile.WriteFile(path, f.Format(), atomicfile.Perm(path, 0o644)); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "wrote %s: %d kinds of disk\n", path, len(f.Disks))
	return nil
}

func loadFdisk(path string) (*fdisk.File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return fdisk.Parse(path, b)
}

// writeTables plans every node's disks, then writes them: nothing is
// written when any plan fails.
func writeTables(ctx context.Context, nodes []*node, path string, stdio applets.IO) error {
	f, err := loadFdisk(path)
	if err != nil {
		return err
	}
	type job struct {
		x    *node
		d    disk
		sec  fdisk.Disk
		plan []fdisk.Extent
	}
	var jobs []job
	var refused []error
	for _, x := range nodes {
		ds, err := x.disks(ctx)
		if err != nil {
			return err
		}
		for _, d := range ds {
			sec, ok := f.Match(d.Name, d.Size)
			if !ok {
				fmt.Fprintf(stdio.Out, "node %d: /dev/%s (%s): no section in %s, left alone\n", x.n, d.Name, fdisk.Human(d.Size), path)
				continue
			}
			plan, err := sec.Plan(d.Size, d.Sector)
			if err != nil {
				refused = append(refused, fmt.Errorf("node %d: /dev/%s (%s:%d): %w", x.n, d.Name, path, sec.Line, err))
				continue
			}
			jobs = append(jobs, job{x, d, sec, plan})
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("nothing written: %w", errors.Join(refused...))
	}
	var failed []error
	for _, j := range jobs {
		x := *j.x
		x.Stdin = strings.NewReader(j.sec.Text())
		dev := "/dev/" + j.d.Name
		status, out, err := x.Run(ctx, localfs.Self, "beofdisk", "-apply", dev)
		if err != nil || status != 0 {
			failed = append(failed, fmt.Errorf("node %d: %s: exit %d %v: %s", x.n, dev, status, err, strings.TrimSpace(string(out))))
			continue
		}
		fmt.Fprintf(stdio.Out, "node %d: %s: %s", x.n, dev, out)
	}
	return errors.Join(failed...)
}

// applyStdin is the node half of -w.
func applyStdin(dev string, stdio applets.IO) error {
	b, err := io.ReadAll(stdio.In)
	if err != nil {
		return err
	}
	f, err := fdisk.Parse("stdin", b)
	if err != nil {
		return err
	}
	if len(f.Disks) != 1 {
		return fmt.Errorf("stdin holds %d sections, want 1", len(f.Disks))
	}
	ext, err := fdisk.Apply(dev, f.Disks[0])
	if err != nil {
		return err
	}
	var parts []string
	name := strings.TrimPrefix(dev, "/dev/")
	for _, e := range ext {
		parts = append(parts, fmt.Sprintf("%s %s %s", fdisk.PartName(name, e.Index), e.Type, fdisk.Human(e.Bytes())))
	}
	fmt.Fprintf(stdio.Out, "GPT written: %s\n", strings.Join(parts, ", "))
	return nil
}

func loadConfig(path string) (*config.Config, error) {
	c, err := config.Load(path, config.Options{})
	if errors.Is(err, fs.ErrNotExist) {
		return config.Default(), nil
	}
	return c, err
}

func setup(ctx context.Context, nodes []*node, o opts, stdio applets.IO) error {
	c, err := loadConfig(o.cfg)
	if err != nil {
		return err
	}
	p := localfs.PolicyOf(c)
	var failed []error
	for _, x := range nodes {
		t, err := fstab.Load(o.fstab, x.n)
		if err != nil {
			return err
		}
		if t == nil {
			return fmt.Errorf("node %d: neither %s nor %s", x.n, fstab.NodeFile(o.fstab, x.n), o.fstab)
		}
		ms, _ := t.Resolve(fstab.Vars{}) // local lines need no addresses
		rep, err := localfs.Setup(ctx, x, localfs.Lines(ms), p)
		for _, r := range rep {
			fmt.Fprintf(stdio.Out, "node %d: %s\n", x.n, r)
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("node %d: %w", x.n, err))
		}
	}
	return errors.Join(failed...)
}
