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

// rounds is how many boots of each kind (ROUNDS, default 3).
var rounds = 3

// sample is one boot's times: qemu start → up, /init → up, connected
// (boot) → up (the mount phase: the lab runs no node_up script), and on
// the node the wait for the mounts' modules and init's preload of them;
// and on the node's own clock (guest): stage 1's start → bpslave
// connected, and → its last mount done (connected when it has none).
// Under ICOUNT the guest's clock counts its instructions, so those do
// not depend on how busy the host is.
type sample struct {
	up, initUp, mounts, modules, preload time.Duration
	guestConnected, guestDone            time.Duration
}

func TestNFS(t *testing.T) {
	if os.Getenv("BEO_BENCH_NFS") == "" {
		t.Skip("run by bench/nfs/run")
	}
	if n, err := strconv.Atoi(os.Getenv("ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	// BEO_BIN is the build measured; BEO_BIN_BEFORE, if set, another one
	// booted in the same run, interleaved, for a before/after comparison.
	bins := []struct{ name, exe string }{{"after", os.Getenv("BEO_BIN")}}
	if b := os.Getenv("BEO_BIN_BEFORE"); b != "" {
		bins = append([]struct{ name, exe string }{{"before", b}}, bins...)
	}
	kernel, _, err := lab.Kernel("/")
	if err != nil {
		t.Skip(err)
	}
	// ICOUNT=N runs the VMs with -icount shift=N,sleep=on: the guest's
	// clock then counts its instructions (2^N ns each) while it runs.
	if n := os.Getenv("ICOUNT"); n != "" {
		qemuArgs = []string{"-icount", "shift=" + n + ",sleep=on"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()
	home, err := os.MkdirTemp("", "beo-bench-nfs-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	os.Chmod(home, 0o755)
	fstab := fmt.Sprintf("$MASTER:%s /home nfs rw\n$MASTER:/usr /usr nfs ro\n", home)

	// Time to up, alternating binaries and boots without and with the fstab.
	got := map[string][]sample{}
	for r := range rounds {
		for _, b := range bins {
			for _, f := range []string{"", fstab} {
				c, s := boot(t, ctx, b.exe, kernel, f)
				key := b.name + map[bool]string{true: " none", false: " nfs"}[f == ""]
				got[key] = append(got[key], s)
				t.Logf("round %d, %s: %+v", r, key, s)
				if r == rounds-1 && f != "" && b.name == "after" {
					read(t, ctx, c, home) // on the last boot with the fstab
				}
				c.Close()
			}
		}
	}
	fmt.Printf("\n| 1 node, TCG%s, median of %d | qemu → up | /init → up | mount phase (connected → up) | waiting for modules | init's preload | node's clock: stage 1 → connected | → mounts done |\n|---|---|---|---|---|---|---|---|\n",
		strings.Join(append([]string{""}, qemuArgs...), " "), rounds)
	for _, b := range bins {
		for _, f := range []string{"none", "nfs"} {
			ss := got[b.name+" "+f]
			pick := func(g func(sample) time.Duration) time.Duration {
				var ds []time.Duration
				for _, s := range ss {
					ds = append(ds, g(s))
				}
				return median(ds)
			}
			fmt.Printf("| %s, fstab %s | %v | %v | %v | %v | %v | %v | %v |\n", b.name, f,
				pick(func(s sample) time.Duration { return s.up }), pick(func(s sample) time.Duration { return s.initUp }),
				pick(func(s sample) time.Duration { return s.mounts }), pick(func(s sample) time.Duration { return s.modules }),
				pick(func(s sample) time.Duration { return s.preload }),
				pick(func(s sample) time.Duration { return s.guestConnected }), pick(func(s sample) time.Duration { return s.guestDone }))
		}
	}
}

// boot starts a one-node lab cluster of exe with fstab and waits for up.
func boot(t *testing.T, ctx context.Context, exe, kernel, fstab string) (*lab.Cluster, sample) {
	t.Helper()
	start := time.Now()
	c, err := lab.StartCluster(ctx, lab.ClusterOptions{Exe: exe, Dir: t.TempDir(), Listed: 1, Kernel: kernel, Boot: true, Accel: "tcg", Fstab: fstab, QEMUArgs: qemuArgs})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitUp(ctx, 0); err != nil {
		c.Close()
		t.Fatal(err)
	}
	var s sample
	var init, connected time.Time
	for _, m := range c.Timeline(c.Machines[0]) {
		switch {
		case m.T.IsZero():
		case m.Name == lab.MomentInit:
			init = m.T
		case m.Name == lab.MomentBoot:
			connected = m.T
		case m.Name == lab.MomentUp:
			s.up = m.T.Sub(c.Machines[0].Started)
			if !init.IsZero() {
				s.initUp = m.T.Sub(init)
			}
			if !connected.IsZero() {
				s.mounts = m.T.Sub(connected)
			}
		}
	}
	if s.up == 0 {
		s.up = time.Since(start)
	}
	if d := os.Getenv("KEEP_SERIAL"); d != "" {
		b, _ := os.ReadFile(c.Machines[0].Serial)
		os.WriteFile(fmt.Sprintf("%s/serial-%d.log", d, time.Now().UnixNano()), b, 0o644)
	}
	s.modules, s.preload = modules(c)
	s.guestConnected, s.guestDone = guestPhases(c)
	return c, s
}

// qemuArgs are the VMs' extra QEMU arguments (ICOUNT).
var qemuArgs []string

// guestPhases reads the node's console: the kernel's stamps (seconds
// since it started) of init's stage 1 and of "node ready", which also
// gives init's wall clock (clock=), and bpslave's wall-clock stamps of
// "connected to master" and each "mounted", put on the kernel's clock
// through it.
func guestPhases(c *lab.Cluster) (connected, done time.Duration) {
	b, _ := os.ReadFile(c.Machines[0].Serial)
	stamp := func(re string) (float64, []string) {
		m := regexp.MustCompile(`\[\s*(\d+\.\d+)\] ` + re).FindStringSubmatch(string(b))
		if m == nil {
			return -1, nil
		}
		f, _ := strconv.ParseFloat(m[1], 64)
		return f, m[2:]
	}
	stage1, _ := stamp(`beoclient: .*msg="beoclient stage 1`)
	ready, clock := stamp(`beoclient: .*msg="node ready".* clock=(\S+)`)
	if stage1 < 0 || ready < 0 {
		return 0, 0
	}
	wall, err := time.Parse(time.RFC3339Nano, clock[0])
	if err != nil {
		return 0, 0
	}
	at := func(t time.Time) time.Duration { // a wall-clock time on the kernel's clock, from stage 1
		return time.Duration((ready-stage1)*float64(time.Second)) + t.Sub(wall)
	}
	for _, m := range regexp.MustCompile(`time=(\S+) level=INFO msg=("connected to master"|mounted) `).FindAllStringSubmatch(string(b), -1) {
		t, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		if m[2] == `"connected to master"` && connected == 0 {
			connected = at(t)
		}
		if d := at(t); d > done && connected > 0 {
			done = d
		}
	}
	return connected, done
}

// modules reads from the node's serial console how long its mounts
// waited for their kernel modules and how long init's preload of them
// took.
func modules(c *lab.Cluster) (wait, preload time.Duration) {
	s, _ := os.ReadFile(c.Machines[0].Serial)
	for _, m := range regexp.MustCompile(`msg="kernel modules for a mount" .* took=(\S+)`).FindAllSubmatch(s, -1) {
		d, _ := time.ParseDuration(string(m[1]))
		wait += d
	}
	if m := regexp.MustCompile(`msg="kernel modules for the fstab preloaded" .* took=(\S+)`).FindSubmatch(s); m != nil {
		preload, _ = time.ParseDuration(string(m[1]))
	}
	return wait, preload
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
