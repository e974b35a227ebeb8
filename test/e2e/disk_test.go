package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/fstab"
	"github.com/beo-cluster/beo/pkg/lab"
)

// Issue 12 item 4, local disks, on TestPXE's cluster: machine diskNode
// has a virtio disk of diskSize bytes; the config asks for mkfs if_error.
// diskLines are the local lines node 1's fstab gets once the disk is
// partitioned.
const (
	diskNode   = 1
	diskSize   = 1 << 30
	diskConfig = "mkfs if_error\nfsck safe\n"
	diskLines  = "# local disk of node 1\n/dev/vda1 swap swap defaults 0 0\n/dev/vda2 /scratch ext4 defaults 0 0\n"
)

// pxeDiskFiles are the fdisk file beofdisk reads and node 1's fstab.
type pxeDiskFiles struct{ fdisk, fstab string }

// pxePartition runs before node 1's reboot: beofdisk -d writes the default
// layout for the disk node 1 reports, a layout that does not fit is
// refused with nothing written, and beofdisk -w writes the GPT, which
// the node's kernel sees at once. Then node 1's own fstab (fstab.1: the
// lines every node has, and the local ones) has the reboot set the disk
// up as the node boots.
func pxePartition(t *testing.T, ctx context.Context, c *lab.Cluster, exe, dir string) pxeDiskFiles {
	f := pxeDiskFiles{fdisk: filepath.Join(dir, "fdisk"), fstab: fstab.NodeFile(c.Fstab(), diskNode)}
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
	all, err := os.ReadFile(c.Fstab())
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.fstab, append(all, diskLines...), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// pxeLocalDisk runs after node 1's reboot, which made its filesystem and
// swap as it booted (mkfs if_error: the partitions were blank), mounted
// /scratch and turned swap on — no beofdisk -s. A file written there
// survives another reboot, after which the boot only checks the
// filesystem (fsck safe) and makes nothing. beofdisk -s, the same code
// for nodes that are up, finds everything in use and leaves it.
func pxeLocalDisk(t *testing.T, ctx context.Context, c *lab.Cluster, exe string, f pxeDiskFiles) {
	t.Run("local disk: /scratch and swap set up at boot, a file survives the next", func(t *testing.T) {
		where := func(i int) string { return fmt.Sprintf("%s:%d: ", f.fstab, i) }
		nfsLines := strings.Count(strings.TrimSuffix(pxeFileText(t, f.fstab), diskLines), "\n")
		swapLine, scratchLine := where(nfsLines+2), where(nfsLines+3)
		nodeLog := func(since int) string {
			b, _ := os.ReadFile(filepath.Join(c.LogDir, "node.1"))
			return string(b[min(since, len(b)):])
		}
		setUp := func(log string) {
			t.Helper()
			for _, want := range []string{swapLine + "mounted /dev/vda1 on swap (swap)", scratchLine + "mounted /dev/vda2 on /scratch (ext4)"} {
				if !strings.Contains(log, want) {
					t.Errorf("node.1 lacks %q:\n%s", want, log)
				}
			}
			if s := pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "cat", "/proc/swaps"); !strings.Contains(s, "/dev/vda1") {
				t.Errorf("/proc/swaps on node 1:\n%s\nwant /dev/vda1", s)
			}
			if m := pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "cat", "/proc/mounts"); !strings.Contains(m, "/dev/vda2 /scratch ext4") {
				t.Fatalf("/scratch is not mounted on node 1:\n%s", m)
			}
		}
		log := nodeLog(0)
		for _, want := range []string{swapLine + "mkswap /dev/vda1", scratchLine + "mke2fs -q -F -t ext4 /dev/vda2"} {
			if !strings.Contains(log, want) {
				t.Errorf("the boot after partitioning did not make the filesystems: node.1 lacks %q:\n%s", want, log)
			}
		}
		setUp(log)
		// The node's shell finds only what the node has: sync is shipped
		// by a bpsh of its own.
		pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "/bin/sh", "-c", "echo survives > /scratch/keep")
		pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "sync")

		// beofdisk -s on a node that is up: the same preparation, which
		// finds both partitions in use and leaves them alone.
		out := pxeRun(t, ctx, exe, c.Socket, "beofdisk", "-s", "-config", c.Config, "-fstab", c.Fstab(), "-n", "1")
		t.Logf("beofdisk -s:\n%s", out)
		for _, want := range []string{"/dev/vda1: in use, left alone", "/dev/vda2: in use, left alone", "/dev/vda2: mounted on /scratch"} {
			if !strings.Contains(out, want) {
				t.Errorf("beofdisk -s on the set-up node: no %q", want)
			}
		}

		mark := len(nodeLog(0))
		pxeReboot(t, ctx, c, exe, diskNode)
		log = nodeLog(mark)
		if strings.Contains(log, "mke2fs") || strings.Contains(log, "mkswap") {
			t.Errorf("the second boot made a filesystem again (mkfs if_error on a good one):\n%s", log)
		}
		if !strings.Contains(log, scratchLine+"e2fsck -p /dev/vda2: exit") {
			t.Errorf("the second boot did not check /dev/vda2 (fsck safe):\n%s", log)
		}
		setUp(log)
		if got := pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "cat", "/scratch/keep"); got != "survives\n" {
			t.Errorf("/scratch/keep after the reboot: %q, want \"survives\\n\"", got)
		}
	})
}

// pxeFileText is a file's text; the test fails if it cannot be read.
func pxeFileText(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
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
