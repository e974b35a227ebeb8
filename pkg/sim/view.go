package sim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// A simulated node's view of the filesystem.
//
// Run as root, beo sim starts each bpslave in a mount namespace of its
// own (CLONE_NEWNS) and the slave, first thing, enters its node's view
// (EnterView) before it serves anything: an overlay whose lower layer is
// the host's root file system and whose upper layer is the node's
// directory DIR/nodes/N, with the host's /proc, /dev and /sys (and /home,
// when it is a mount of its own — as a node's NFS /home) bound in, made
// the slave's root. So everything the node writes — bpcp targets, the
// file cache, the programs and libraries placed for its jobs, a job's
// files in /tmp — lands in DIR/nodes/N and nowhere else, and the node's
// jobs see what bpcp wrote: `bpcp f 3:/tmp/f; bpsh 3 cat /tmp/f` works
// as on a real node. What a node reads and did not write is the host's,
// as if the master exported its whole root: the master's programs, its
// users, its MPI. /run and /tmp (when they are mounts of the host's
// own) are the node's, empty at first, and so is /dev/shm (a tmpfs of
// its own).
//
// What still differs from a real node: the host's kernel, processes and
// network (one process table, loopback addresses); the master's files
// are visible even where a real node would need an fstab line; and
// without root (no mount namespace) a simulated node's jobs see the host
// as it is and bpcp writes into DIR/nodes/N, which the jobs do not see.

// ViewDirs returns the overlay's mount point and work directory for the
// node whose directory (upper layer) is upper.
func ViewDirs(upper string) (merged, work string) {
	return upper + ".view", upper + ".work"
}

// EnterView makes this process's root the node view of upper (see
// above). It must run in a private mount namespace (beo sim starts the
// slave with CLONE_NEWNS) and before the process opens anything it will
// use by path.
func EnterView(upper string) error {
	merged, work := ViewDirs(upper)
	for _, d := range []string{merged, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("node view: %w", err)
		}
	}
	// Nothing mounted here may reach the host's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("node view: make mounts private: %w", err)
	}
	opts := fmt.Sprintf("lowerdir=/,upperdir=%s,workdir=%s", upper, work)
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return fmt.Errorf("node view: overlay %s: %w", opts, err)
	}
	for _, d := range []string{"/proc", "/dev", "/sys", "/home"} {
		if d == "/home" && !isMount(d) {
			continue // on the root file system: the overlay has it
		}
		if err := unix.Mount(d, filepath.Join(merged, d), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("node view: bind %s: %w", d, err)
		}
	}
	// Shared memory is each node's own, as on real nodes: jobs on two
	// nodes that name their segments alike (MPI's, after the host name
	// and job) must not meet in the host's /dev/shm.
	if shm := filepath.Join(merged, "dev", "shm"); isDir(shm) {
		if err := unix.Mount("tmpfs", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
			return fmt.Errorf("node view: /dev/shm: %w", err)
		}
	}
	if err := unix.Chroot(merged); err != nil {
		return fmt.Errorf("node view: chroot: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return fmt.Errorf("node view: %w", err)
	}
	return nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// isMount reports whether dir is a mount point (its device differs from
// its parent's).
func isMount(dir string) bool {
	var a, b unix.Stat_t
	if unix.Stat(dir, &a) != nil || unix.Stat(filepath.Dir(dir), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

// errNoView is why a simulation runs without node views.
var errNoView = errors.New("not root: simulated nodes see the host's file system as it is")
