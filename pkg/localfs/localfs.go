// Package localfs prepares a compute node's local-disk filesystems and
// swap, as Scyld's setup_fs did: for each /etc/beowulf/fstab line naming a
// local device, the config's mkfs and fsck policies (config.Mkfs,
// config.Fsck) decide whether the master's own mke2fs, e2fsck or mkswap
// run on the node — through the process space, shipped like any program
// bpsh runs — before the filesystem is mounted or the swap turned on.
//
// # Two halves
//
// The master half (Prepare, Activate, Setup) decides and orders; it
// reaches the node only through a Node, which runs a program of the
// master's there (the beofdisk applet's Node is pkg/bproc). What must
// look at the node's own devices runs there as the master's beo binary,
// args[0] Self: `beo beofdisk -probe DEV` (ProbeDevice: which signature
// the partition carries and whether it is in use), `-mount` (Mount) and
// `-swapon` (Swapon). Nothing is installed on the node.
//
// # Decisions
//
// Decide is the policy, a pure function tested on its own:
//
//   - a partition already mounted (or swapped on) is left alone;
//   - mkfs always: make it, check nothing;
//   - a partition with the wanted signature: check it (fsck safe: e2fsck
//     -p; full: e2fsck -f -y; never: no check; swap: never checked); if
//     e2fsck exits 4 or more (errors left) and mkfs is if_error, make it
//     again, else fail;
//   - a partition without: mkfs if_error makes it, mkfs never fails.
//
// Signatures are read like blkid does: the ext2/3/4 superblock magic
// 0xEF53 at byte 1024+56, the swap signature SWAPSPACE2 (or the old
// SWAP-SPACE) in the last 10 bytes of the first page.
//
// # Integration with /etc/beowulf/fstab
//
// Line holds the fstab fields this package needs; Lines picks the local
// ones out of a node's fstab as pkg/fstab resolves it (the one fstab
// parser). Two callers, one code path:
//
//   - the node's mount step at boot (pkg/master mounts.go): before it has
//     the node mount its fstab, the master runs Prepare for each local
//     line, in file order, on the node while it is in boot; the node then
//     mounts the line, or turns the swap on, with the other lines (pkg/slave
//     mount.go). A failed Prepare is a failed mount: the node goes error,
//     node.N naming the file and line, unless the line says nonfatal;
//   - `beofdisk -s` (Setup), for nodes that are up: Prepare, then Activate
//     (`beo beofdisk -mount|-swapon` on the node: Mount, Swapon, which load
//     the file system's modules first, as the boot-time mount does).
package localfs

import (
	"context"
	"fmt"
	"strings"

	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/fstab"
)

// Self, as args[0] of Node.Run, names the master's own beo binary.
const Self = "beo"

// Node runs programs of the master's on one node.
type Node interface {
	// Run runs args (args[0] a program on the master's PATH, or Self) on
	// the node and waits. status is its exit status, out its stdout and
	// stderr; err is set only when it could not run or was killed.
	Run(ctx context.Context, args ...string) (status int, out []byte, err error)
}

// Policy is the config's mkfs and fsck settings.
type Policy struct {
	Mkfs config.Mkfs
	Fsck config.Fsck
}

// PolicyOf returns c's policies.
func PolicyOf(c *config.Config) Policy { return Policy{c.MkfsPolicy(), c.FsckPolicy()} }

// Line is an fstab line's fields: device, mount point (swap or none for
// swap), type, and options as pkg/fstab resolves them (mount(2) flags
// and file system data; "" for none).
type Line struct {
	Device, Dir, Type, Options string
}

// Local reports whether l is a local device this package prepares: a
// /dev path of type ext2, ext3, ext4 or swap.
func (l Line) Local() bool {
	return strings.HasPrefix(l.Device, "/dev/") && (l.Type == "swap" || isExt(l.Type))
}

func isExt(t string) bool { return t == "ext2" || t == "ext3" || t == "ext4" }

// Sig is a partition's signature.
type Sig string

// The signatures ProbeDevice tells apart.
const (
	SigNone Sig = "none"
	SigExt  Sig = "ext"
	SigSwap Sig = "swap"
)

// Found is what ProbeDevice reports of a partition.
type Found struct {
	Sig   Sig
	InUse bool // mounted, or swapped on
}

// Plan is what Decide chose.
type Plan struct {
	Skip bool     // in use: leave it
	Fsck []string // the check to run first, nil for none
	Mkfs []string // the mkfs to run (after Fsck: only if it fails and Remake)
	// Remake: make the filesystem when Fsck leaves errors (mkfs if_error).
	Remake bool
}

// Decide returns the plan for line l whose partition is as found.
func Decide(l Line, found Found, p Policy) (Plan, error) {
	if found.InUse {
		return Plan{Skip: true}, nil
	}
	mkfs := []string{"mke2fs", "-q", "-F", "-t", l.Type, l.Device}
	want := SigExt
	if l.Type == "swap" {
		mkfs, want = []string{"mkswap", l.Device}, SigSwap
	}
	switch p.Mkfs {
	case config.MkfsAlways:
		return Plan{Mkfs: mkfs}, nil
	case config.MkfsNever, config.MkfsIfError:
	default:
		return Plan{}, fmt.Errorf("unknown mkfs policy %q", p.Mkfs)
	}
	if found.Sig != want {
		if p.Mkfs == config.MkfsIfError {
			return Plan{Mkfs: mkfs}, nil
		}
		return Plan{}, fmt.Errorf("%s has no %s signature (found %s) and the config says mkfs never", l.Device, want, found.Sig)
	}
	if want == SigSwap {
		return Plan{}, nil
	}
	var fsck []string
	switch p.Fsck {
	case config.FsckNever:
		return Plan{}, nil
	case config.FsckSafe:
		fsck = []string{"e2fsck", "-p", l.Device}
	case config.FsckFull:
		fsck = []string{"e2fsck", "-f", "-y", l.Device}
	default:
		return Plan{}, fmt.Errorf("unknown fsck policy %q", p.Fsck)
	}
	return Plan{Fsck: fsck, Mkfs: mkfs, Remake: p.Mkfs == config.MkfsIfError}, nil
}

// Report says what Prepare or Setup did, one step a string: "e2fsck -p
// /dev/vda2: clean", "mke2fs -q -F -t ext4 /dev/vda2", "mounted on
// /scratch".
type Report []string

// Prepare makes or checks line l's partition on the node, as the
// policy says; it mounts nothing.
func Prepare(ctx context.Context, n Node, l Line, p Policy) (Report, error) {
	if !l.Local() {
		return nil, fmt.Errorf("%s: not a local ext2/3/4 or swap line", l.Device)
	}
	var rep Report
	status, out, err := n.Run(ctx, Self, "beofdisk", "-probe", l.Device)
	if err != nil || status != 0 {
		return rep, runErr("probe "+l.Device, status, out, err)
	}
	found, err := ParseFound(string(out))
	if err != nil {
		return rep, fmt.Errorf("probe %s: %w", l.Device, err)
	}
	plan, err := Decide(l, found, p)
	if err != nil {
		return rep, err
	}
	if plan.Skip {
		return append(rep, l.Device+": in use, left alone"), nil
	}
	if plan.Fsck != nil {
		status, out, err := n.Run(ctx, plan.Fsck...)
		cmd := strings.Join(plan.Fsck, " ")
		switch {
		case err != nil:
			return rep, runErr(cmd, status, out, err)
		case status < 4:
			return append(rep, fmt.Sprintf("%s: exit %d (%s)", cmd, status, fsckMeaning(status))), nil
		case !plan.Remake:
			return rep, fmt.Errorf("%s: exit %d, errors left and the config says mkfs never:\n%s", cmd, status, out)
		}
		rep = append(rep, fmt.Sprintf("%s: exit %d, errors left: making a new filesystem (mkfs if_error)", cmd, status))
	}
	if plan.Mkfs != nil {
		cmd := strings.Join(plan.Mkfs, " ")
		status, out, err := n.Run(ctx, plan.Mkfs...)
		if err != nil || status != 0 {
			return rep, runErr(cmd, status, out, err)
		}
		rep = append(rep, cmd)
	}
	return rep, nil
}

func fsckMeaning(status int) string {
	switch status {
	case 0:
		return "clean"
	case 1:
		return "errors corrected"
	}
	return "errors corrected, reboot advised"
}

func runErr(what string, status int, out []byte, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: exit status %d: %s", what, status, strings.TrimSpace(string(out)))
}

// Activate mounts line l's filesystem (or turns its swap on) on the node.
func Activate(ctx context.Context, n Node, l Line) (string, error) {
	args := []string{Self, "beofdisk", "-swapon", l.Device}
	what := "swap on"
	if l.Type != "swap" {
		opts := l.Options
		if opts == "" {
			opts = "defaults"
		}
		args = []string{Self, "beofdisk", "-mount", l.Device, l.Dir, l.Type, opts}
		what = "mounted on " + l.Dir
	}
	status, out, err := n.Run(ctx, args...)
	if err != nil || status != 0 {
		return "", runErr(strings.Join(args[1:], " "), status, out, err)
	}
	return l.Device + ": " + what, nil
}

// Setup prepares and activates every local line of a node's fstab, in
// order, stopping at the first failure.
func Setup(ctx context.Context, n Node, lines []Line, p Policy) (Report, error) {
	var rep Report
	for _, l := range lines {
		if !l.Local() {
			continue
		}
		r, err := Prepare(ctx, n, l, p)
		rep = append(rep, r...)
		if err != nil {
			return rep, err
		}
		a, err := Activate(ctx, n, l)
		if err != nil {
			return rep, err
		}
		rep = append(rep, a)
	}
	return rep, nil
}

// String is Found as ProbeDevice's caller prints it: "ext", "swap in-use".
func (f Found) String() string {
	if f.InUse {
		return string(f.Sig) + " in-use"
	}
	return string(f.Sig)
}

// ParseFound reads Found.String.
func ParseFound(s string) (Found, error) {
	fs := strings.Fields(s)
	if len(fs) == 0 || len(fs) > 2 || len(fs) == 2 && fs[1] != "in-use" {
		return Found{}, fmt.Errorf("bad probe answer %q", s)
	}
	f := Found{Sig: Sig(fs[0]), InUse: len(fs) == 2}
	switch f.Sig {
	case SigNone, SigExt, SigSwap:
		return f, nil
	}
	return Found{}, fmt.Errorf("bad probe answer %q", s)
}

// Lines returns the local lines (Local) of a node's resolved fstab
// (pkg/fstab: Table.Resolve, file order): the one fstab parser for NFS
// and local lines alike.
func Lines(ms []fstab.Mount) []Line {
	var out []Line
	for _, m := range ms {
		if l := (Line{Device: m.Source, Dir: m.Target, Type: m.Type, Options: m.Options}); l.Local() {
			out = append(out, l)
		}
	}
	return out
}
