package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/lab"
)

// Issue 12 item 4, local disks, on TestPXE's cluster: machine diskNode
// has a virtio disk of diskSize bytes; the config asks for mkfs if_error.
const (
	diskNode   = 1
	diskSize   = 1 << 30
	diskConfig = "mkfs if_error\nfsck safe\n"
	diskFstab  = "# local disk of node 1\n/dev/vda1 swap swap defaults 0 0\n/dev/vda2 /scratch ext4 defaults 0 0\n"
)

// pxeDiskFiles are the fdisk and fstab files beofdisk reads.
type pxeDiskFiles struct{ fdisk, fstab string }

// pxePartition runs before node 1's reboot: beofdisk -d writes the default
// layout for the disk node 1 reports, a layout that does not fit is
// refused with nothing written, and beofdisk -w writes the GPT, which
// the node's kernel sees at once.
func pxePartition(t *testing.T, ctx context.Context, c *lab.Cluster, exe, dir string) pxeDiskFiles {
	f := pxeDiskFiles{fdisk: filepath.Join(dir, "fdisk"), fstab: filepath.Join(dir, "disk-fstab")} // not the lab's fstab, which the master mounts at boot
	if err := os.WriteFile(f.fstab, []byte(diskFstab), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("beofdisk -d and -w partition the node's disk", func(t *testing.T) {
		out := pxeRun(t, ctx, exe, c.Socket, "beofdisk", "-d", "-f", f.fdisk)
		b, err := os.ReadFile(f.fdisk)
		if err != nil {
			t.Fatalf("beofdisk -d printed %q and wrote nothing: %v", out, err)
		}
		if !strings.Contains(string(b), "disk vda 1G\npart swap 128M\npart linux rest\n") {
			t.Fatalf("beofdisk -d wrote:\n%s\nwant a section for node 1's 1G vda: swap 128M, linux rest", b)
		}
		// A layout bigger than the disk: refused, nothing written.
		bad := filepath.Join(dir, "fdisk.bad")
		os.WriteFile(bad, []byte("disk vda\npart swap 512M\npart linux 1G\n"), 0o644)
		if out, err := pxeOutput(ctx, nil, exe, c.Socket, "beofdisk", "-w", "-f", bad); err == nil || !strings.Contains(err.Error(), "nothing written") {
			t.Errorf("beofdisk -w of a 1.5G layout on a 1G disk: %v (stdout %q), want refused with nothing written", err, out)
		}
		if parts := pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "cat", "/proc/partitions"); strings.Contains(parts, "vda1") {
			t.Fatalf("a refused layout left partitions:\n%s", parts)
		}
		out = pxeRun(t, ctx, exe, c.Socket, "beofdisk", "-w", "-f", f.fdisk)
		t.Logf("beofdisk -w:\n%s", out)
		if !strings.Contains(out, "node 1: /dev/vda: GPT written: vda1 swap 128M, vda2 linux") {
			t.Errorf("beofdisk -w printed %q", out)
		}
		parts := pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "cat", "/proc/partitions")
		if !strings.Contains(parts, "vda1") || !strings.Contains(parts, "vda2") {
			t.Errorf("node 1's kernel does not see the new partitions:\n%s", parts)
		}
	})
	return f
}

// pxeLocalDisk runs after node 1's reboot: beofdisk -s makes the
// filesystem and swap (mkfs if_error), mounts /scratch and turns swap on;
// a file written there survives another reboot, after which -s only
// checks the filesystem (fsck safe) and makes nothing.
func pxeLocalDisk(t *testing.T, ctx context.Context, c *lab.Cluster, exe string, f pxeDiskFiles) {
	t.Run("local disk: /scratch and swap after a reboot, a file survives the next", func(t *testing.T) {
		setup := func() string {
			out := pxeRun(t, ctx, exe, c.Socket, "beofdisk", "-s", "-config", c.Config, "-fstab", f.fstab, "-n", "1")
			t.Logf("beofdisk -s:\n%s", out)
			return out
		}
		swapOn := func() {
			t.Helper()
			if s := pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "cat", "/proc/swaps"); !strings.Contains(s, "/dev/vda1") {
				t.Errorf("/proc/swaps on node 1:\n%s\nwant /dev/vda1", s)
			}
		}
		out := setup()
		for _, want := range []string{"mkswap /dev/vda1", "/dev/vda1: swap on", "mke2fs -q -F -t ext4 /dev/vda2", "/dev/vda2: mounted on /scratch"} {
			if !strings.Contains(out, want) {
				t.Errorf("first beofdisk -s: no %q", want)
			}
		}
		swapOn()
		if m := pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "cat", "/proc/mounts"); !strings.Contains(m, "/dev/vda2 /scratch ext4") {
			t.Fatalf("/scratch is not mounted on node 1:\n%s", m)
		}
		// The node's shell finds only what the node has: sync is shipped
		// by a bpsh of its own.
		pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "/bin/sh", "-c", "echo survives > /scratch/keep")
		pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "sync")

		pxeReboot(t, ctx, c, exe, diskNode)

		out = setup()
		if strings.Contains(out, "mke2fs") || strings.Contains(out, "mkswap") {
			t.Errorf("second beofdisk -s made a filesystem again (mkfs if_error on a good one)")
		}
		if !strings.Contains(out, "e2fsck -p /dev/vda2: exit") {
			t.Errorf("second beofdisk -s did not check /dev/vda2 (fsck safe)")
		}
		swapOn()
		if got := pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "cat", "/scratch/keep"); got != "survives\n" {
			t.Errorf("/scratch/keep after the reboot: %q, want \"survives\\n\"", got)
		}
	})
}

// pxeReboot reboots node n with bpctl -R and waits until it is up again.
func pxeReboot(t *testing.T, ctx context.Context, c *lab.Cluster, exe string, n int) {
	t.Helper()
	m := c.Machines[n]
	mark := m.Mark()
	since := time.Now()
	pxeRun(t, ctx, exe, c.Socket, "bpctl", "-S", strconv.Itoa(n), "-R")
	rctx, cancel := context.WithTimeout(ctx, pxeBootWait)
	defer cancel()
	if _, _, err := m.WaitSerial(rctx, "Linux version", mark); err != nil {
		t.Fatalf("node %d did not boot again: %v", n, err)
	}
	if err := pxePoll(rctx, pxeBootWait, func() error {
		if !pxeLeftUp(c.Events(), n, since) {
			return os.ErrDeadlineExceeded
		}
		return nil
	}); err != nil {
		t.Fatalf("node %d never left up after bpctl -R", n)
	}
	if err := c.WaitUp(rctx, n); err != nil {
		t.Fatal(err)
	}
	t.Logf("node %d up again %v after bpctl -R", n, time.Since(since).Round(100*time.Millisecond))
}
