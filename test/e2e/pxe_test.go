package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/lab"
	"github.com/beo-cluster/beo/pkg/logfwd"
	"github.com/beo-cluster/beo/pkg/master"
	"github.com/beo-cluster/beo/pkg/stats"
	"github.com/beo-cluster/beo/test/netns"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// pxeBootWait bounds one boot to up: generous, the two host cores are
// shared (TESTING.md measures ~12 s for 3 VMs under TCG when idle).
const pxeBootWait = 4 * time.Minute

// pxeRequire fails (not skips) when the binary lacks an applet the PXE
// boot needs: a missing piece of beo is a failure of beo.
func pxeRequire(t *testing.T, exe string, applets ...string) {
	t.Helper()
	out, err := exec.Command(exe).Output()
	if err != nil {
		t.Fatalf("%s: %v", exe, err)
	}
	for _, a := range applets {
		if !bytes.Contains(out, []byte("\n  "+a+" ")) {
			t.Fatalf("%s has no %q applet: the PXE boot cannot work without it", exe, a)
		}
	}
}

// pxeRun runs the beo binary with BEO_SOCKET set and returns stdout.
func pxeRun(t *testing.T, ctx context.Context, exe, socket string, args ...string) string {
	t.Helper()
	out, err := pxeOutput(ctx, nil, exe, socket, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pxeOutput runs the beo binary with BEO_SOCKET set, as cred when it is
// not nil, and returns stdout; the error quotes stdout and stderr.
func pxeOutput(ctx context.Context, cred *syscall.Credential, exe, socket string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), bproc.SocketEnv+"="+socket)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = "/"
	}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("beo %s: %w\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// TestPXE is the proof of issue 4: QEMU machines PXE-boot from `beo
// master` through QEMU's iPXE ROM and become usable nodes.
func TestPXE(t *testing.T) {
	if err := lab.Check(true); err != nil {
		t.Skip(err)
	}
	kernel, release, err := lab.Kernel("/")
	if err != nil {
		t.Skip(err)
	}
	exe := netns.Beo(t)
	pxeRequire(t, exe, "master", "beoboot", "bpsh", "bpcp", "bpctl", "bpstat", "beofdisk")
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute) // the MPI subtests power a node off and on twice
	defer cancel()
	dir := t.TempDir()
	start := time.Now()
	accel, why := pxeAccel()
	t.Logf("accelerator %s (%s)", accel, why)
	nfs, fstab := pxeNFS(t, dir) // issue 12: every node's /home, node 0's /usr over NFS
	c, err := lab.StartCluster(ctx, lab.ClusterOptions{Exe: exe, Dir: dir, Listed: 2, Unlisted: 1, Kernel: kernel, Boot: true,
		Accel: accel, Log: pxeLogger(t), Fstab: fstab, Disks: map[int]int64{diskNode: diskSize}, Config: diskConfig + moveConfig})
	if err != nil {
		t.Fatal(err)
	}
	booted := false
	defer func() {
		switch {
		case t.Failed() && booted:
			// In a subtest of its own, which passes: `make test-root`'s
			// summary of failures (gotestsum) then ends with the failed
			// subtests' own messages, not with these logs.
			t.Run("the lab's logs, for the failure above", func(t *testing.T) { pxeKeep(t, c) })
		case t.Failed():
			pxeKeep(t, c)
		}
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	t.Logf("namespace %s", c.Lab.NS)

	// Both listed machines and the unlisted one reach up.
	wctx, wcancel := context.WithTimeout(ctx, pxeBootWait)
	err = c.WaitUp(wctx, 0, 1, 2)
	wcancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("3 nodes up %v after start", time.Since(start).Round(100*time.Millisecond))
	booted = true
	for _, m := range c.Machines {
		t.Logf("%s timeline:\n%s", m.VM.Name, lab.FormatTimeline(c.Timeline(m)))
	}

	t.Run("unlisted MAC auto-added", func(t *testing.T) {
		f, err := config.Open(c.Config, config.Options{})
		if err != nil {
			t.Fatal(err)
		}
		mac, err := config.ParseMAC(lab.MAC(100).String())
		if err != nil {
			t.Fatal(err)
		}
		got := f.Config().Lookup(mac)
		if got.Kind != config.KindNode || got.Node != 2 {
			t.Errorf("config lookup of %s = %+v, want node 2 (nodeassign append)\nconfig:\n%s", mac, got, f.Bytes())
		}
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range st.Nodes {
			if n.Node == 2 && !slices.Contains(n.MACs, mac.String()) {
				t.Errorf("node 2 MACs = %v, want %s", n.MACs, mac)
			}
		}
	})

	// Each node made its own key, and the master pinned each.
	pins := func() map[string]string {
		got := map[string]string{}
		for _, n := range []string{"0", "1", "2"} {
			b, err := os.ReadFile(filepath.Join(dir, "keys", master.PinDir, n+".pub"))
			if err != nil {
				t.Errorf("node %s: no pinned key: %v", n, err)
			}
			got[n] = string(b)
		}
		return got
	}
	firstPins := pins()
	t.Run("every node has its own key", func(t *testing.T) {
		if firstPins["0"] == firstPins["1"] || firstPins["1"] == firstPins["2"] || firstPins["0"] == firstPins["2"] {
			t.Errorf("nodes share a key: %v", firstPins)
		}
	})

	t.Run("bpsh -a uname -r", func(t *testing.T) {
		out := pxeRun(t, ctx, exe, c.Socket, "bpsh", "-a", "uname", "-r")
		got := strings.Fields(out)
		if len(got) != 3 {
			t.Fatalf("bpsh -a uname -r printed %q, want 3 lines of %s", out, release)
		}
		for _, g := range got {
			if g != release {
				t.Errorf("bpsh -a uname -r line %q, want %q", g, release)
			}
		}
	})

	// Issue 12's node userland: the master's /bin/sh is /bin/sh on the
	// node (usrmerge mirrored), and the node's name is its nodename.
	t.Run("node userland and name", func(t *testing.T) {
		if out := pxeRun(t, ctx, exe, c.Socket, "bpsh", "0", "/bin/sh", "-c", "echo $0"); out != "/bin/sh\n" {
			t.Errorf("bpsh 0 /bin/sh -c 'echo $0' printed %q", out)
		}
		if out := pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "hostname"); out != "n1\n" {
			t.Errorf("bpsh 1 hostname: %q, want n1 (nodename n%%N)", out)
		}
		if out := pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "cat", "/etc/hostname"); out != "n1\n" {
			t.Errorf("node 1's /etc/hostname: %q, want n1", out)
		}
	})

	t.Run("bpcp round trip", func(t *testing.T) {
		data := make([]byte, 1<<20+17)
		rand.Read(data)
		local := filepath.Join(dir, "payload")
		back := filepath.Join(dir, "payload.back")
		if err := os.WriteFile(local, data, 0o644); err != nil {
			t.Fatal(err)
		}
		pxeRun(t, ctx, exe, c.Socket, "bpcp", local, "1:/tmp/payload")
		pxeRun(t, ctx, exe, c.Socket, "bpcp", "1:/tmp/payload", back)
		got, err := os.ReadFile(back)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("bpcp round trip: got %d bytes, want the %d sent (equal: false)", len(got), len(data))
		}
	})

	// Issue 12 item 7: a client on a node reaches the master through the
	// node's bpslave; master: is the master's file system, not the node's.
	t.Run("bpcp on a node to master:", func(t *testing.T) {
		dst := filepath.Join(dir, "os-release.from-node0")
		pxeRun(t, ctx, exe, c.Socket, "bpsh", "0", exe, "bpcp", "/etc/os-release", "master:"+dst)
		if b, err := os.ReadFile(dst); err != nil || len(b) == 0 {
			t.Errorf("%s on the master: %d bytes, %v; want node 0's /etc/os-release", dst, len(b), err)
		}
		if out, err := pxeOutput(ctx, nil, exe, c.Socket, "bpsh", "0", "/bin/sh", "-c", "if test -e "+dst+"; then echo on-node; fi"); err != nil || out != "" {
			t.Errorf("%s on node 0 too: %q, %v", dst, out, err)
		}
		if out := pxeRun(t, ctx, exe, c.Socket, "bpsh", "0", exe, "bpstat"); !strings.Contains(out, "up") {
			t.Errorf("bpsh 0 bpstat: %q, want the node table", out)
		}
		// A script on the node finds them by name: bpslave puts the
		// node's links (/beo/bin) last on the job's PATH, which names no
		// directory holding them unless beo is installed on the master.
		if out, err := pxeOutput(ctx, nil, exe, c.Socket, "bpsh", "0", "/bin/sh", "-c", "bpstat 0 && command -v bpcp"); err != nil || !strings.Contains(out, "up") || !strings.HasSuffix(out, "/bpcp\n") {
			t.Errorf("bpstat and bpcp by name in a script on node 0: %q, %v", out, err)
		}
	})

	// Issue 5 on real nodes: the node-side services beoclient supervises
	// (beoklogd, sendstats, kickbackproxy) and the master's daemons that
	// answer them. Before the reboot, so every node has booted once.
	pxeNodeSide(t, ctx, c, exe, release, start)

	// Issue 12: the nodes' fstab and the master's NFS server.
	pxeNFSTests(t, ctx, c, exe, nfs)
	pxeModprobe(t, ctx, c, exe) // issue 12: the kernel's module helper (nfs_test.go)
	pxeMove(t, ctx, c, exe)     // issue 14: process migration (move_test.go)
	// Issue 13: the stock MPIs across the nodes (NFS /usr); it powers
	// node 2 off and on, before the subtests that reboot node 1.
	pxeMPITests(t, ctx, c, exe, nfs)
	// Issue 12's local disks: node 1's disk is partitioned now, and its
	// filesystems and swap made as it boots again below (its fstab.1).
	disk := pxePartition(t, ctx, c, exe, dir)

	t.Run("bpctl -R reboots and the node comes back", func(t *testing.T) {
		m := c.Machines[1]
		mark := m.Mark()
		path := filepath.Join(c.LogDir, "messages.1")
		boots := func() (int, error) {
			b, err := os.ReadFile(path)
			return strings.Count(string(b), " kernel: Linux version "+release), err
		}
		before, _ := boots()
		since := time.Now()
		pxeRun(t, ctx, exe, c.Socket, "bpctl", "-S", "1", "-R")
		// The machine really reboots: its kernel starts again.
		rctx, rcancel := context.WithTimeout(ctx, pxeBootWait)
		defer rcancel()
		if _, _, err := m.WaitSerial(rctx, "Linux version", mark); err != nil {
			t.Fatalf("node 1 did not boot again after bpctl -R: %v", err)
		}
		if !pxeLeftUp(c.Events(), 1, since) {
			t.Errorf("node 1 never left up after bpctl -R; events %v", c.Events())
		}
		if err := c.WaitUp(rctx, 1); err != nil {
			t.Fatal(err)
		}
		t.Logf("node 1 up again %v after bpctl -R", time.Since(since).Round(100*time.Millisecond))
		// A diskless node makes a new key at every boot; its network
		// boot let the master pin the new one.
		if now := pins(); now["1"] == firstPins["1"] || now["0"] != firstPins["0"] {
			t.Errorf("after node 1's reboot: node 1's pin kept %v, node 0's changed %v", now["1"] == firstPins["1"], now["0"] != firstPins["0"])
		}
		if b, _ := os.ReadFile(filepath.Join(c.LogDir, "node.1")); !strings.Contains(string(b), "pinned after a network boot") {
			t.Errorf("node.1 does not record the re-enrollment:\n%s", b)
		}
		out := pxeRun(t, ctx, exe, c.Socket, "bpsh", "1", "uname", "-r")
		if got := strings.TrimSpace(out); got != release {
			t.Errorf("after reboot bpsh 1 uname -r = %q, want %q", got, release)
		}
		// beoklogd forwards the new boot's kernel messages as well.
		err := pxePoll(ctx, pxeServiceWait, func() error {
			if n, err := boots(); err != nil || n != before+1 {
				return fmt.Errorf("%d boots' kernel messages (%v), want %d", n, err, before+1)
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s: %v", path, err)
		}
	})

	pxeLocalDisk(t, ctx, c, exe, disk)
	pxeMasterRestart(t, ctx, c, exe, nfs) // last: it replaces c.Master
}

// pxeLeftUp reports whether node n was seen in a state other than up
// after since.
func pxeLeftUp(ev []lab.Event, n int, since time.Time) bool {
	for _, e := range ev {
		if e.Node == n && e.T.After(since) && e.State != "up" {
			return true
		}
	}
	return false
}

// pxeKeep copies the lab's logs next to the test's output when it failed,
// so CI shows why: serial consoles and the master log.
func pxeKeep(t *testing.T, c *lab.Cluster) {
	for _, m := range c.Machines {
		t.Logf("%s serial (%s), last lines:\n%s", m.VM.Name, m.Serial, m.SerialTail(40))
	}
	if c.Master != nil {
		t.Logf("master log (%s), last lines:\n%s", c.Master.Log, lab.Tail(c.Master.Log, 60))
	}
	ls, _ := filepath.Glob(filepath.Join(c.LogDir, "node.*"))
	for _, l := range ls {
		t.Logf("%s:\n%s", l, lab.Tail(l, 30))
	}
}

// pxeLogger sends the lab's log lines to t.Log (the lab logs only from
// the calls the test makes, never after it returns).
func pxeLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(pxeWriter{t}, nil))
}

type pxeWriter struct{ t *testing.T }

func (w pxeWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// pxeAccel probes the accelerator once per test binary (it costs 10 s
// when KVM hangs).
var pxeAccel = sync.OnceValues(func() (string, string) {
	k, _, err := lab.Kernel("/")
	if err != nil {
		return "tcg", err.Error()
	}
	return lab.ProbeAccel(context.Background(), k, os.TempDir(), "", lab.ProbeTimeout) // no cache: probe afresh
})

// pxeServiceWait bounds the wait for a node-side service's first result
// (names written, a sample sent, the log backlog forwarded) after up.
const pxeServiceWait = 90 * time.Second

// pxePoll calls f until it returns nil, or ctx ends, or d passes; it
// returns f's last error.
func pxePoll(ctx context.Context, d time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %v: %w", d, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// pxeNodeSide proves issue 5 on booted nodes 0-2: logs, stats, names and
// users, each served by a node daemon beoclient started and a master
// daemon `beo master` runs.
func pxeNodeSide(t *testing.T, ctx context.Context, c *lab.Cluster, exe, release string, start time.Time) {
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	addr := map[int]string{}
	for _, n := range st.Nodes {
		addr[n.Node] = n.Addr
	}
	all := []int{0, 1, 2}
	for _, n := range all {
		if addr[n] == "" {
			t.Fatalf("node %d has no address in the master's table", n)
		}
	}
	masterAddr := c.Lab.Addr.Addr().String()

	t.Run("node logs reach the master", func(t *testing.T) {
		// The syslog path: a program's syslog(3) on node 1 (/dev/log,
		// served by beoklogd), besides the kernel's messages.
		mark := fmt.Sprintf("mark-%d", time.Now().UnixNano())
		if _, err := exec.LookPath("logger"); err != nil {
			t.Logf("no syslog(3) check: the master has no logger (Debian package bsdutils)")
			mark = ""
		} else if _, err := pxeOutput(ctx, nil, exe, c.Socket, "bpsh", "1", "logger", "-t", "beo-e2e", mark); err != nil {
			t.Error(err) // and check the kernel's messages all the same
			mark = ""
		}
		for _, n := range all {
			want := []string{"kernel: Linux version " + release, "kernel: Command line: ", "beo.master=" + masterAddr}
			if n == 1 && mark != "" {
				want = append(want, "beo-e2e: "+mark)
			}
			path := filepath.Join(c.LogDir, fmt.Sprintf("messages.%d", n))
			err := pxePoll(ctx, pxeServiceWait, func() error {
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				return pxeCheckLog(string(b), n, addr[n], start, want)
			})
			if err != nil {
				t.Errorf("%s: %v", path, err)
			}
		}
	})

	t.Run("beostat lists every node's own stats", func(t *testing.T) {
		// Polled as a whole: a node's first sample can come before it
		// has a tick of idle time, and the listing shows rates only once
		// there is something to show.
		err := pxePoll(ctx, pxeServiceWait, func() error {
			snap, err := pxeBeostat(ctx, c, exe, all)
			if err != nil {
				return err
			}
			// The text listing, with the dashboard named by $BEOSTAT_URL.
			out, err := c.Lab.Output(ctx, "env", "BEOSTAT_URL="+dashboard.DefaultURL, exe, "beostat")
			if err != nil {
				return err
			}
			for _, n := range all {
				head := fmt.Sprintf("Node %d (up) %s: last sample ", n, addr[n])
				i := strings.Index(out, head)
				if i < 0 {
					return fmt.Errorf("beostat lacks %q:\n%s", head, out)
				}
				block, _, _ := strings.Cut(out[i:], "\n\n")
				for _, w := range []string{"\n  load ", "\n  cpu ", "\n  cpu0 ", "\n  memory ", "\n  rootfs ", "\n  net "} {
					if !strings.Contains(block, w) {
						return fmt.Errorf("beostat node %d lacks %q:\n%s", n, strings.TrimSpace(w), block)
					}
				}
			}
			return pxeMetrics(ctx, c, snap, all)
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("bpstat and beostat agree", func(t *testing.T) {
		out := pxeRun(t, ctx, exe, c.Socket, "bpstat", "-l", "0-2")
		rows := map[int][]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			f := strings.Fields(l)
			var n int
			if _, err := fmt.Sscan(f[0], &n); err == nil && len(f) >= 3 {
				rows[n] = f
			}
		}
		first, err := pxeBeostat(ctx, c, exe, all)
		if err != nil {
			t.Fatal(err)
		}
		for _, sn := range first.Nodes {
			f := rows[sn.Node]
			if len(f) < 3 || f[1] != sn.Addr || f[2] != sn.State || sn.State != "up" {
				t.Errorf("node %d: bpstat -l row %q, beostat state %q addr %s; want both up at %s", sn.Node, f, sn.State, sn.Addr, addr[sn.Node])
			}
			if age := first.Time.Sub(sn.Stats.Last); age > 3*stats.DefaultInterval {
				t.Errorf("node %d: last sample %v old, want under %v", sn.Node, age, 3*stats.DefaultInterval)
			}
		}
		// Fresh: every node's sendstats keeps sending.
		err = pxePoll(ctx, 4*stats.DefaultInterval, func() error {
			now, err := pxeBeostat(ctx, c, exe, all)
			if err != nil {
				return err
			}
			for i, sn := range now.Nodes {
				if !sn.Stats.Last.After(first.Nodes[i].Stats.Last) || sn.Stats.Report.Seq <= first.Nodes[i].Stats.Report.Seq {
					return fmt.Errorf("node %d: no sample after seq %d at %v", sn.Node, sn.Stats.Report.Seq, sn.Stats.Last)
				}
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})

	t.Run("names resolve on a node", func(t *testing.T) {
		tests := []struct{ name, addr string }{
			{"n1", addr[1]}, {".1", addr[1]}, {"n2", addr[2]}, {"master", masterAddr}, {".-1", masterAddr},
		}
		// One deadline for all: kickbackproxy writes every name at once.
		err := pxePoll(ctx, pxeServiceWait, func() error {
			for _, tt := range tests {
				out, err := pxeOutput(ctx, nil, exe, c.Socket, "bpsh", "0", "getent", "hosts", tt.name)
				if err != nil {
					return err
				}
				f := strings.Fields(out)
				if len(f) < 2 || f[0] != tt.addr || !slices.Contains(f[1:], tt.name) {
					return fmt.Errorf("bpsh 0 getent hosts %s: got %q, want %s with the name %s", tt.name, strings.TrimSpace(out), tt.addr, tt.name)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		out := pxeRun(t, ctx, exe, c.Socket, "bpsh", "0", "getent", "netgroup", "cluster")
		for _, n := range all {
			if w := fmt.Sprintf("(n%d,,)", n); !strings.Contains(out, w) {
				t.Errorf("bpsh 0 getent netgroup cluster = %q, lacks %s", out, w)
			}
		}
	})

	t.Run("a user's job sees its own name", func(t *testing.T) {
		u := pxeUser(t, ctx)
		bin := pxeSharedExe(t, exe)
		pxeSearchable(t, filepath.Dir(c.Socket))
		cred := &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: []uint32{u.gid}}
		out, err := pxeOutput(ctx, cred, bin, c.Socket, "bpsh", "0", "id")
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("uid=%d(%s) gid=%d(%s) groups=%d(%s)", u.uid, u.name, u.gid, u.name, u.gid, u.name)
		if got := strings.TrimSpace(out); got != want {
			t.Errorf("bpsh 0 id as %s = %q, want %q (the node learns a job's user from kickbackproxy before the job starts)", u.name, got, want)
		}
	})

	pxeAccounting(t, ctx, c, exe) // acct_test.go
	t.Run("a job that runs the node out of memory is told so", func(t *testing.T) {
		// sh doubles a string until the node's memory is gone: the
		// kernel's OOM killer takes the job (the largest process), the
		// node stays up, and bpsh names the cause (its cgroup's
		// memory.events) instead of a bare SIGKILL.
		out, err := pxeOutput(ctx, nil, exe, c.Socket, "bpsh", "2", "sh", "-c", `x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done`)
		want := "2: killed by signal 9 (killed): out of memory, the kernel killed 1 process of the job"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bpsh 2 sh -c <a memory hog>: %q, %v; want an error saying %q", out, err, want)
		}
		if got := strings.TrimSpace(pxeRun(t, ctx, exe, c.Socket, "bpsh", "2", "echo", "still here")); got != "still here" {
			t.Errorf("node 2 after the OOM kill: %q", got)
		}
	})

	t.Run("a fork bomb leaves the node up", func(t *testing.T) {
		// Without the jobs group's limits (pkg/slave cgroup.go) the
		// node-wide OOM killer took bpslave and the node went down.
		bctx, bcancel := context.WithTimeout(ctx, 15*time.Second)
		defer bcancel()
		pxeOutput(bctx, nil, exe, c.Socket, "bpsh", "2", "sh", "-c", `f(){ f | f & }; f; while :; do :; done`) // ends with its context
		if err := pxePoll(ctx, 60*time.Second, func() error {
			out, err := pxeOutput(ctx, nil, exe, c.Socket, "bpsh", "2", "echo", "still here")
			if err != nil || strings.TrimSpace(out) != "still here" {
				return fmt.Errorf("node 2 after a fork bomb: %q, %v", out, err)
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
		if st := pxeRun(t, ctx, exe, c.Socket, "bpstat", "2"); !strings.Contains(st, " up ") {
			t.Errorf("bpstat 2 after a fork bomb:\n%s", st)
		}
	})

	t.Run("a job has its own cgroup and dies with its bpslave", func(t *testing.T) {
		pxeJobsDie(t, ctx, c, exe)
	})
}

// pxeJobsDie proves issue 14's no-orphans promise on a real node: a job
// runs in its own group under /sys/fs/cgroup/jobs (beoclient mounts
// cgroup2 and starts bpslave with -cgroup), and when bpslave is killed —
// SIGKILL, nothing in it runs — beoclient kills every process of every
// job it started. A node has only what bpsh ships (no NFS /usr here), so
// the jobs are `sleep` and sh builtins: one sh waits on /dev/kmsg with a
// subshell of its own (-N: no stdio a dying bpslave would close).
func pxeJobsDie(t *testing.T, ctx context.Context, c *lab.Cluster, exe string) {
	const n = "2"
	out := pxeRun(t, ctx, exe, c.Socket, "bpsh", n, "cat", "/proc/self/cgroup")
	if !regexp.MustCompile(`(?m)^0::/jobs/\d+$`).MatchString(out) {
		t.Errorf("bpsh %s cat /proc/self/cgroup = %q, want 0::/jobs/N", n, out)
	}
	// Two jobs of `sleep` (a node has only what bpsh ships: sh's own
	// builtins cannot block without a busy loop; reading /dev/kmsg a byte
	// at a time fails at once), one without stdio.
	var jobs []*exec.Cmd
	for _, args := range [][]string{
		{"bpsh", n, "sleep", "3002"},
		{"bpsh", "-N", n, "sleep", "3003"},
	} {
		job := exec.CommandContext(ctx, exe, args...)
		job.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
		if err := job.Start(); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, job)
	}
	count := func(name string) (int, error) {
		out, err := pxeOutput(ctx, nil, exe, c.Socket, "bpsh", n, "pgrep", "-x", name)
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 && strings.TrimSpace(out) == "" {
			return 0, nil // pgrep found none (bpsh passes its status on)
		}
		return len(strings.Fields(out)), err
	}
	if err := pxePoll(ctx, 60*time.Second, func() error {
		sl, err := count("sleep")
		if err != nil || sl != 2 {
			return fmt.Errorf("on node %s: %d sleep (%v), want 2", n, sl, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slave := strings.TrimSpace(pxeRun(t, ctx, exe, c.Socket, "bpsh", n, "pgrep", "-f", "^bpslave -m ")) // PID 1 runs /beo/bin/beo as argv[0] bpslave (its comm is beo)
	if _, err := strconv.Atoi(slave); err != nil {
		t.Fatalf("bpslave on node %s: %q", n, slave)
	}
	pxeOutput(ctx, nil, exe, c.Socket, "bpsh", n, "kill", "-9", slave) // dies with its bpslave: no answer
	for _, job := range jobs {
		if err := job.Wait(); err == nil {
			t.Errorf("%v exited 0 after its bpslave was killed", job.Args)
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, pxeBootWait)
	defer wcancel()
	if err := c.WaitUp(wctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := pxePoll(ctx, 30*time.Second, func() error {
		sl, err := count("sleep")
		if err != nil || sl != 0 {
			return fmt.Errorf("on node %s after its bpslave was killed: %d sleep (%v), want none", n, sl, err)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// Timestamps a forwarded message must not carry: the kernel's own, an
// RFC 3164 one, an ISO one, or slog's time= attribute.
var pxeStamp = regexp.MustCompile(`^\[\s*\d+\.\d+\]|^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|^\d{4}-\d\d-\d\dT|\btime=\d{4}-\d\d-\d\d`)

// pxeCheckLog checks the receiver's file of node n: every line is
// `TIME HOST TAG: MSG` with one timestamp (the master's, since start),
// HOST is the node's name or address, and each of want appears.
func pxeCheckLog(text string, n int, addr string, start time.Time, want []string) error {
	if text == "" {
		return errors.New("empty")
	}
	name := fmt.Sprintf("n%d", n)
	for i, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		f := strings.SplitN(l, " ", 3)
		if len(f) < 3 {
			return fmt.Errorf("line %d %q: not TIME HOST MSG", i+1, l)
		}
		ts, err := time.Parse(logfwd.TimeFormat, f[0])
		if err != nil {
			return fmt.Errorf("line %d %q: time: %v", i+1, l, err)
		}
		if ts.Before(start.Add(-time.Minute)) || ts.After(time.Now().Add(time.Minute)) {
			return fmt.Errorf("line %d %q: time %v is not the master's clock since the test started (%v)", i+1, l, ts, start)
		}
		if f[1] != name && f[1] != addr {
			return fmt.Errorf("line %d %q: host %q, want %s or %s", i+1, l, f[1], name, addr)
		}
		_, msg, ok := strings.Cut(f[2], ": ")
		if !ok {
			return fmt.Errorf("line %d %q: no TAG: ", i+1, l)
		}
		if pxeStamp.MatchString(f[2]) || pxeStamp.MatchString(msg) {
			return fmt.Errorf("line %d %q: a second timestamp", i+1, l)
		}
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			return fmt.Errorf("no line has %q", w)
		}
	}
	return nil
}

// pxeBeostat reads `beostat -json -N nodes` from inside the lab's
// namespace (the dashboard listens on its loopback) and checks that each
// node is up with a fresh sample of its own: one core and at most the
// VM's memory, which the host's /proc would not show.
func pxeBeostat(ctx context.Context, c *lab.Cluster, exe string, nodes []int) (dashboard.Snapshot, error) {
	var snap dashboard.Snapshot
	spec := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(nodes)), ","), "[]")
	out, err := c.Lab.Output(ctx, exe, "beostat", "-url", dashboard.DefaultURL, "-json", "-N", spec)
	if err != nil {
		return snap, err
	}
	if err := json.Unmarshal([]byte(out), &snap); err != nil {
		return snap, fmt.Errorf("beostat -json: %v\n%s", err, out)
	}
	if len(snap.Nodes) != len(nodes) {
		return snap, fmt.Errorf("beostat -json -N %s listed %d nodes, want %d", spec, len(snap.Nodes), len(nodes))
	}
	for i, n := range snap.Nodes {
		s := n.Stats
		switch {
		case n.Node != nodes[i]:
			return snap, fmt.Errorf("beostat listed node %d, want %d", n.Node, nodes[i])
		case n.State != "up":
			return snap, fmt.Errorf("node %d: state %s, want up", n.Node, n.State)
		case s == nil:
			return snap, fmt.Errorf("node %d: no stats yet", n.Node)
		case s.Stale:
			return snap, fmt.Errorf("node %d: stats stale (last %v)", n.Node, s.Last)
		case s.From.String() != n.Addr:
			return snap, fmt.Errorf("node %d: stats from %s, want its address %s", n.Node, s.From, n.Addr)
		case s.Report.Mem.Total == 0 || s.Report.Mem.Total > 256<<20:
			return snap, fmt.Errorf("node %d: memory total %d, want the VM's (≤ 256 MiB)", n.Node, s.Report.Mem.Total)
		case len(s.Report.Cores) != 1:
			return snap, fmt.Errorf("node %d: %d cores, want the VM's 1", n.Node, len(s.Report.Cores))
		case s.Report.Procs == 0 || s.Report.Uptime <= 0 || s.Report.Root.Total == 0:
			return snap, fmt.Errorf("node %d: empty report %+v", n.Node, s.Report)
		}
	}
	return snap, nil
}

// pxeMetrics checks the dashboard's /metrics for per-node series that
// agree with snap.
func pxeMetrics(ctx context.Context, c *lab.Cluster, snap dashboard.Snapshot, nodes []int) error {
	if _, err := exec.LookPath("curl"); err != nil {
		return fmt.Errorf("/metrics check needs curl (Debian package curl): %w", err)
	}
	body, err := c.Lab.Output(ctx, "curl", "-fsS", "--max-time", "10", dashboard.DefaultURL+"/metrics")
	if err != nil {
		return err
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("/metrics does not parse: %v", err)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
	next:
		for _, m := range fams[name].GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Untyped != nil:
				return m.Untyped.GetValue(), true
			}
		}
		return 0, false
	}
	for i, n := range nodes {
		node := fmt.Sprint(n)
		if v, ok := value("beo_node_state", map[string]string{"node": node, "state": "up"}); !ok || v != 1 {
			return fmt.Errorf("/metrics beo_node_state{node=%q,state=\"up\"} = %v (present %v), want 1", node, v, ok)
		}
		if v, ok := value("beo_node_memory_total_bytes", map[string]string{"node": node}); !ok || uint64(v) != snap.Nodes[i].Stats.Report.Mem.Total {
			return fmt.Errorf("/metrics beo_node_memory_total_bytes{node=%q} = %v (present %v), want beostat's %d", node, v, ok, snap.Nodes[i].Stats.Report.Mem.Total)
		}
		for _, name := range []string{"beo_node_last_sample_timestamp_seconds", "beo_node_uptime_seconds", "beo_node_load1", "beo_node_procs"} {
			if v, ok := value(name, map[string]string{"node": node}); !ok || v <= 0 && name != "beo_node_load1" {
				return fmt.Errorf("/metrics %s{node=%q} = %v (present %v), want a sample's value", name, node, v, ok)
			}
		}
		var cpu float64
		for _, mode := range []string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"} {
			v, ok := value("beo_node_cpu_seconds_total", map[string]string{"node": node, "mode": mode})
			if !ok {
				return fmt.Errorf("/metrics lacks beo_node_cpu_seconds_total{node=%q,mode=%q}", node, mode)
			}
			cpu += v
		}
		if cpu <= 0 {
			return fmt.Errorf("/metrics beo_node_cpu_seconds_total{node=%q} sum to %v, want > 0", node, cpu)
		}
	}
	return nil
}

type pxeAccount struct {
	name     string
	uid, gid uint32
}

// pxeUser creates a user (with its own group, no home) on this host, the
// master, and removes both when the test ends. The node knows nothing of
// it until a job of it starts there.
func pxeUser(t *testing.T, ctx context.Context) pxeAccount {
	t.Helper()
	for _, tool := range []string{"useradd", "userdel"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian package passwd)", tool)
		}
	}
	name := fmt.Sprintf("beoe2e%d", os.Getpid())
	if out, err := exec.CommandContext(ctx, "useradd", "-M", "-U", "-s", "/usr/sbin/nologin", "-c", "beo e2e test", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v\n%s", name, err, out)
		}
		if _, err := user.LookupGroup(name); err == nil { // USERGROUPS_ENAB off
			exec.Command("groupdel", name).Run()
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	var a pxeAccount
	a.name = name
	if _, err := fmt.Sscan(u.Uid+" "+u.Gid, &a.uid, &a.gid); err != nil {
		t.Fatal(err)
	}
	return a
}

// pxeSharedExe returns a copy of exe that every user may run (a binary
// built into t.TempDir() is behind a 0700 directory).
func pxeSharedExe(t *testing.T, exe string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "beo-e2e-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "beo")
	if err := os.WriteFile(out, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// pxeSearchable lets every user reach files under dir (the master's
// client socket in t.TempDir(), whose directories are 0700) by adding the
// search bit to dir and each parent below os.TempDir() that lacks it;
// nothing is made readable, and nothing outside the temporary directory
// is changed.
func pxeSearchable(t *testing.T, dir string) {
	t.Helper()
	top := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		m := fi.Mode().Perm()
		inside := d != top && strings.HasPrefix(d, top+string(filepath.Separator))
		switch {
		case m&0o011 == 0o011:
		case inside:
			if err := os.Chmod(d, m|0o011); err != nil {
				t.Fatal(err)
			}
		default:
			t.Skipf("%s (mode %v) keeps other users from the master's socket", d, m)
		}
		if d == filepath.Dir(d) {
			return
		}
	}
}

// TestPXECheckLog keeps the log check of TestPXE honest: it must reject
// what the node-log requirement forbids.
func TestPXECheckLog(t *testing.T) {
	start := time.Now().Add(-time.Minute)
	ts := start.Add(30 * time.Second).Format(logfwd.TimeFormat)
	good := ts + " n1 kernel: Linux version 6.1.0-x\n" +
		ts + " 10.99.0.101 kernel: Command line: console=ttyS0 beo.master=10.99.0.1\n" +
		ts + " n1 beoclient: level=INFO msg=\"node ready\"\n"
	want := []string{"kernel: Linux version 6.1.0-x", "beo.master=10.99.0.1"}
	tests := []struct {
		name, text, err string
	}{
		{"good", good, ""},
		{"empty", "", "empty"},
		{"kernel stamp", good + ts + " n1 kernel: [    0.000000] Linux version\n", "second timestamp"},
		{"node's RFC 3164 stamp", good + ts + " n1 kernel: Dec  1 16:06:04 Linux version\n", "second timestamp"},
		{"stamp before the tag", good + ts + " n1 Dec  1 16:06:04 n1 kernel: x\n", "second timestamp"},
		{"slog time", good + ts + " n1 beoclient: time=2026-12-01T16:06:04Z level=INFO\n", "second timestamp"},
		{"another node", good + ts + " n2 kernel: x\n", `host "n2"`},
		{"old time", good + start.Add(-time.Hour).Format(logfwd.TimeFormat) + " n1 kernel: x\n", "master's clock"},
		{"no tag", good + ts + " n1 orphan text\n", "no TAG"},
		{"no boot messages", ts + " n1 kernel: later\n", "Linux version"},
	}
	for _, tt := range tests {
		err := pxeCheckLog(tt.text, 1, "10.99.0.101", start, want)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v, want nil", tt.name, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.err)
		}
	}
}
