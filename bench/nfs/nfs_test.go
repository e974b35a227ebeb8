// Package nfs measures the nodes' NFS mounts on a real PXE-booted QEMU
// node (pkg/lab): how much the fstab's mounts add to the node's time to
// up, and how a 256 MiB read from the NFS /home compares with nc over
// the same link, in the same run. It runs only from bench/nfs/run
// (BEO_BENCH_NFS=1); see README.md for the numbers.
package nfs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/lab"
)

const rounds = 3

func TestNFS(t *testing.T) {
	if os.Getenv("BEO_BENCH_NFS") == "" {
		t.Skip("run by bench/nfs/run")
	}
	exe := os.Getenv("BEO_BIN")
	kernel, _, err := lab.Kernel("/")
	if err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	home, err := os.MkdirTemp("", "beo-bench-nfs-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	os.Chmod(home, 0o755)
	fstab := fmt.Sprintf("$MASTER:%s /home nfs rw\n$MASTER:/usr /usr nfs ro\n", home)

	// Time to up, alternating boots without and with the fstab.
	var plain, mounted, mounts, modules []time.Duration
	for r := range rounds {
		for _, f := range []string{"", fstab} {
			c, up := boot(t, ctx, exe, kernel, f)
			if f == "" {
				plain = append(plain, up)
			} else {
				mounted = append(mounted, up)
				m, mod := phases(c)
				mounts, modules = append(mounts, m), append(modules, mod)
			}
			if r < rounds-1 || f == "" {
				c.Close()
				continue
			}
			read(t, ctx, c, home) // on the last boot with the fstab
			c.Close()
		}
	}
	fmt.Printf("\n| time to up (qemu start → up), median of %d | without fstab | with /home + /usr over NFS | mount phase (of which modules) |\n|---|---|---|---|\n", rounds)
	fmt.Printf("| 1 node, TCG | %v | %v | %v (%v) |\n", median(plain), median(mounted), median(mounts), median(modules))
}

// boot starts a one-node lab cluster with fstab and waits for up.
func boot(t *testing.T, ctx context.Context, exe, kernel, fstab string) (*lab.Cluster, time.Duration) {
	t.Helper()
	start := time.Now()
	c, err := lab.StartCluster(ctx, lab.ClusterOptions{Exe: exe, Dir: t.TempDir(), Listed: 1, Kernel: kernel, Boot: true, Accel: "tcg", Fstab: fstab})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitUp(ctx, 0); err != nil {
		c.Close()
		t.Fatal(err)
	}
	var up time.Duration
	for _, m := range c.Timeline(c.Machines[0]) {
		if m.Name == lab.MomentUp && !m.T.IsZero() {
			up = m.T.Sub(c.Machines[0].Started)
		}
	}
	if up == 0 {
		up = time.Since(start)
	}
	return c, up
}

// phases reads the mount phase from the master's log and the module
// loading from the node's serial console.
func phases(c *lab.Cluster) (mounts, modules time.Duration) {
	b, _ := os.ReadFile(c.Master.Log)
	if m := regexp.MustCompile(`msg="node mounts done" node=0 count=\d+ took=(\S+)`).FindSubmatch(b); m != nil {
		mounts, _ = time.ParseDuration(string(m[1]))
	}
	s, _ := os.ReadFile(c.Machines[0].Serial)
	for _, m := range regexp.MustCompile(`msg="kernel modules for a mount" .* took=(\S+)`).FindAllSubmatch(s, -1) {
		d, _ := time.ParseDuration(string(m[1]))
		modules += d
	}
	return mounts, modules
}

// read times 256 MiB from the NFS /home and from nc on the master, on the
// node, page cache dropped first, alternating, best of rounds.
func read(t *testing.T, ctx context.Context, c *lab.Cluster, home string) {
	big := home + "/big"
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for range 256 {
		f.Write(buf)
	}
	f.Close()
	cl, err := bproc.Dial(ctx, c.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	timed := func(cmd string) time.Duration {
		var out bytes.Buffer
		x := cl.Command(0, "sh", "-c", "echo 3 > /proc/sys/vm/drop_caches; a=$(date +%s%N); "+cmd+" > /dev/null; b=$(date +%s%N); echo $((b-a))")
		x.Stdout = &out
		if err := x.Run(); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
		if err != nil {
			t.Fatalf("%s: %q", cmd, out.String())
		}
		return time.Duration(ns)
	}
	master := c.Lab.Addr.Addr().String()
	var nfs, nc []time.Duration
	for r := range rounds {
		srv, err := c.Lab.Start(fmt.Sprintf("nc%d", r), []string{"sh", "-c", fmt.Sprintf("exec nc.openbsd -l -N %s 5001 < %s", master, big)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		nc = append(nc, timed(fmt.Sprintf("nc.openbsd -d %s 5001", master)))
		srv.Stop(time.Second)
		nfs = append(nfs, timed("cat /home/big"))
	}
	best := func(ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[0]
	}
	n, k := best(nfs), best(nc)
	fmt.Printf("\n| 256 MiB read on the node, best of %d | NFS /home (cat) | nc over the same link | NFS / nc |\n|---|---|---|---|\n", rounds)
	fmt.Printf("| 1 node, TCG | %v (%.0f MiB/s) | %v (%.0f MiB/s) | %.2f× |\n", n.Round(time.Millisecond), 256/n.Seconds(), k.Round(time.Millisecond), 256/k.Seconds(), k.Seconds()/n.Seconds())
	fmt.Printf("\nall NFS: %v\nall nc: %v\n", nfs, nc)
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Round(10 * time.Millisecond)
}
