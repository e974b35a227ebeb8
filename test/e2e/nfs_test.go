package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/lab"
)

// pxeNFSSetup is the NFS part of TestPXE's cluster (issue 12): a
// directory the master exports as every node's /home, and node 0 also
// mounting the master's /usr read-only. Nodes 1 and 2 keep /usr their
// own, so the library cache stays tested there.
type pxeNFSSetup struct {
	dir, home string
	skip      string // why there is no NFS part: no server to run
}

// pxeNFS makes the exported home (outside t.TempDir(), whose 0700
// parents would keep the test's user out when the master reads as that
// user) and writes node 0's own fstab into the lab's state dir; the
// fstab every node reads is returned for ClusterOptions.Fstab.
func pxeNFS(t *testing.T, stateDir string) (pxeNFSSetup, string) {
	t.Helper()
	if _, err := exec.LookPath("ganesha.nfsd"); err != nil {
		if _, err := os.Stat("/proc/fs/nfsd"); err != nil {
			// No fstab then: the nodes' fatal mounts would all fail.
			return pxeNFSSetup{skip: "no NFS server for the nodes' fstab: install Debian nfs-ganesha nfs-ganesha-vfs"}, ""
		}
	}
	dir, err := os.MkdirTemp("", "beo-e2e-nfs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	all := fmt.Sprintf("# every node: a test-owned directory as /home\n$MASTER:%s /home nfs rw 0 0\n", home)
	node0 := all + "# node 0 only: the master's commands\n$MASTER:/usr /usr nfs ro 0 0\n"
	if err := os.WriteFile(filepath.Join(stateDir, "fstab.0"), []byte(node0), 0o644); err != nil {
		t.Fatal(err)
	}
	return pxeNFSSetup{dir: dir, home: home}, all
}

// pxeMountTimes reads how long each node's mounts took from the master's
// log ("node mounts done" node=N count=C took=D).
func pxeMountTimes(c *lab.Cluster) map[int]time.Duration {
	b, _ := os.ReadFile(c.Master.Log)
	re := regexp.MustCompile(`msg="node mounts done" node=(\d+) count=\d+ took=(\S+)`)
	out := map[int]time.Duration{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.Atoi(m[1])
		if d, err := time.ParseDuration(m[2]); err == nil {
			if _, seen := out[n]; !seen { // the first boot's
				out[n] = d
			}
		}
	}
	return out
}

// pxeNFSTests proves issue 12 on the booted nodes: fstab mounts from the
// master's NFS server (ganesha on this host), the users' files landing
// on the master as theirs, the master's /usr running programs nobody
// sends, fatal and nonfatal failures, and the cost.
func pxeNFSTests(t *testing.T, ctx context.Context, c *lab.Cluster, exe string, nfs pxeNFSSetup) {
	if nfs.skip != "" {
		t.Run("NFS", func(t *testing.T) { t.Skip(nfs.skip) })
		return
	}
	t.Run("fstab mounts: their cost in time to up", func(t *testing.T) {
		times := pxeMountTimes(c)
		for _, n := range []int{0, 1, 2} {
			d, ok := times[n]
			if !ok {
				t.Errorf("node %d: no \"node mounts done\" in the master's log", n)
				continue
			}
			// Goal: ≤ 0.5 s. Under TCG on two shared cores loading the NFS
			// client's modules alone takes 2–3 s (bench/nfs); fail only
			// when a mount waited for a timeout.
			t.Logf("node %d: mounts took %v (goal ≤ 500ms; bench/nfs)", n, d)
			if d >= 30*time.Second { // the slave's mount timeout: a mount waited for it
				t.Errorf("node %d: mounts took %v", n, d)
			}
		}
		b, _ := os.ReadFile(filepath.Join(c.LogDir, "node.0"))
		for _, w := range []string{"fstab.0:2: mounted 10.99.0.1:" + nfs.home + " on /home (nfs4)", "fstab.0:4: mounted 10.99.0.1:/usr on /usr (nfs4)"} {
			if !strings.Contains(string(b), w) {
				t.Errorf("node.0 lacks %q:\n%s", w, b)
			}
		}
	})

	t.Run("NFS /home: a user's job writes, the master reads it as that user", func(t *testing.T) {
		u := pxeUser(t, ctx)
		bin := pxeSharedExe(t, exe)
		pxeSearchable(t, filepath.Dir(c.Socket))
		mine := filepath.Join(nfs.home, u.name)
		if err := os.Mkdir(mine, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(mine, int(u.uid), int(u.gid)); err != nil {
			t.Fatal(err)
		}
		cred := &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: []uint32{u.gid}}
		want := fmt.Sprintf("written on node 0 by %s\n", u.name)
		if _, err := pxeOutput(ctx, cred, bin, c.Socket, "bpsh", "0", "sh", "-c", fmt.Sprintf("printf '%%s' '%s' > /home/%s/out", want, u.name)); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(mine, "out")
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != u.uid || st.Gid != u.gid {
			t.Errorf("%s is owned by %d:%d, want the job's user %d:%d", out, st.Uid, st.Gid, u.uid, u.gid)
		}
		// Read on the master as the user (a 0700 directory: only they can).
		cat := exec.CommandContext(ctx, "cat", out)
		cat.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		got, err := cat.Output()
		if err != nil || string(got) != want {
			t.Errorf("cat %s as %s = %q, %v; want %q", out, u.name, got, err, want)
		}
		// Root on a node is nobody there (root squash): it cannot write
		// into the user's directory.
		if _, err := pxeOutput(ctx, nil, exe, c.Socket, "bpsh", "0", "sh", "-c", fmt.Sprintf("echo x > /home/%s/by-root", u.name)); err == nil {
			t.Errorf("root on node 0 wrote into %s's 0700 directory: no root squash", u.name)
		}
		if _, err := os.Stat(filepath.Join(mine, "by-root")); err == nil {
			t.Error("a file root wrote on node 0 landed on the master")
		}
	})

	t.Run("NFS /usr: node 0 runs the master's programs without being sent them", func(t *testing.T) {
		cl, err := bproc.Dial(ctx, c.Socket)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		// tac: a program no test ran before. Node 0 reads it through its
		// NFS /usr; node 1, without one, is sent it and its libraries.
		for _, tt := range []struct {
			node int
			sent bool
		}{{0, false}, {1, true}} {
			cmd := cl.Command(tt.node, "tac")
			cmd.Stdin = strings.NewReader("a\nb\n")
			var out bytes.Buffer
			cmd.Stdout = &out
			if err := cmd.Run(); err != nil || out.String() != "b\na\n" {
				t.Fatalf("node %d: tac: %q, %v", tt.node, out.String(), err)
			}
			if (cmd.Sent > 0) != tt.sent {
				t.Errorf("node %d: tac was sent %d bytes; want sent: %v", tt.node, cmd.Sent, tt.sent)
			}
		}
		// A shell script finds the master's commands on node 0 only
		// (grep: no test sends it to a node).
		script := "grep -c '^root:' /etc/passwd"
		out, err := pxeOutput(ctx, nil, exe, c.Socket, "bpsh", "0", "sh", "-c", script)
		if err != nil || strings.TrimSpace(out) != "1" {
			t.Errorf("bpsh 0 sh -c %q = %q, %v; want 1", script, out, err)
		}
		if _, err := pxeOutput(ctx, nil, exe, c.Socket, "bpsh", "1", "sh", "-c", script); err == nil {
			t.Errorf("bpsh 1 sh -c %q worked on a node without the master's /usr", script)
		}
	})

	t.Run("a node-side child's ghost exits as the child did", func(t *testing.T) {
		pxeKidStatus(t, ctx, c, exe)
	})

	t.Run("a missing export: a fatal line makes the node error, a nonfatal one is logged", func(t *testing.T) {
		file := c.Fstab() + ".2"
		defer func() {
			os.Remove(file)
			since := time.Now()
			pxeRun(t, ctx, exe, c.Socket, "bpctl", "-S", "2", "--reconnect")
			if err := pxeWaitState(ctx, c, 2, since, "up"); err != nil {
				t.Errorf("node 2 back to its plain fstab: %v", err)
			}
		}()
		missing := "/beo-e2e-not-there"
		for _, tt := range []struct {
			opts, state, log string
		}{
			{"ro", "error", "fstab.2:2: mount failed: "},
			{"ro,nonfatal", "up", "fstab.2:2: nonfatal mount failed: "},
		} {
			text := fmt.Sprintf("$MASTER:%s /home nfs rw\n$MASTER:%s /mnt/x nfs %s\n", nfs.home, missing, tt.opts)
			if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			since := time.Now()
			pxeRun(t, ctx, exe, c.Socket, "bpctl", "-S", "2", "--reconnect")
			if err := pxeWaitState(ctx, c, 2, since, tt.state); err != nil {
				t.Fatalf("%s line: %v", tt.opts, err)
			}
			b, _ := os.ReadFile(filepath.Join(c.LogDir, "node.2"))
			log := string(b)
			for _, w := range []string{tt.log, "the master does not export " + missing + ": no such directory on the master"} {
				if !strings.Contains(log, w) {
					t.Errorf("%s line: node.2 lacks %q:\n%s", tt.opts, w, lab.Tail(filepath.Join(c.LogDir, "node.2"), 15))
				}
			}
		}
	})

	t.Run("read 256 MiB: NFS /home vs nc over the same link", func(t *testing.T) {
		if _, err := exec.LookPath("nc.openbsd"); err != nil {
			t.Skip("needs nc.openbsd (Debian netcat-openbsd) on the master, and so on node 0's NFS /usr")
		}
		big := filepath.Join(nfs.home, "big")
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
		defer os.Remove(big)
		master := c.Lab.Addr.Addr().String()
		// The node times each read itself; its page cache is dropped first.
		timed := func(cmd string) (time.Duration, error) {
			out, err := pxeOutput(ctx, nil, exe, c.Socket, "bpsh", "0", "sh", "-c",
				"echo 3 > /proc/sys/vm/drop_caches; a=$(date +%s%N); "+cmd+" > /dev/null; b=$(date +%s%N); echo $((b-a))")
			if err != nil {
				return 0, err
			}
			ns, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
			return time.Duration(ns), err
		}
		var nfsBest, ncBest time.Duration
		for round := range 2 {
			srv, err := c.Lab.Start(fmt.Sprintf("nc%d", round), []string{"sh", "-c", fmt.Sprintf("exec nc.openbsd -l -N %s 5001 < %s", master, big)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			d, err := timed(fmt.Sprintf("nc.openbsd -d %s 5001", master))
			srv.Stop(time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if ncBest == 0 || d < ncBest {
				ncBest = d
			}
			d, err = timed("cat /home/big")
			if err != nil {
				t.Fatal(err)
			}
			if nfsBest == 0 || d < nfsBest {
				nfsBest = d
			}
		}
		mib := func(d time.Duration) float64 { return 256 / d.Seconds() }
		ratio := ncBest.Seconds() / nfsBest.Seconds()
		t.Logf("256 MiB on node 0, best of 2: NFS /home %v (%.1f MiB/s), nc %v (%.1f MiB/s): NFS/nc = %.2f (goal ≥ 0.8)",
			nfsBest.Round(time.Millisecond), mib(nfsBest), ncBest.Round(time.Millisecond), mib(ncBest), ratio)
		// 0.50–0.55 here with three emulated nodes on two shared cores,
		// 0.70 for one node (bench/nfs); fail only far below.
		if ratio < 0.25 {
			t.Errorf("NFS reads at %.2f× nc's speed", ratio)
		}
	})
}

// pxeWaitState waits until node n, having left its state after since
// (a reconnect makes it boot again), is in state want.
func pxeWaitState(ctx context.Context, c *lab.Cluster, n int, since time.Time, want string) error {
	return pxePoll(ctx, pxeBootWait, func() error {
		booted := false
		last := ""
		for _, e := range c.Events() {
			if e.Node != n || e.T.Before(since) {
				continue
			}
			if e.State == "boot" {
				booted = true
			}
			last = e.State
		}
		if !booted || last != want {
			return fmt.Errorf("node %d: state %q since the reconnect (booted again: %v), want %s", n, last, booted, want)
		}
		return nil
	})
}

// pxeModprobe proves the node kernel's module helper (pkg/pid1
// modprobe.go, issue 12): a root user's mount by hand of a file system
// whose module the node's fstab never asked for gets it loaded, instead
// of "unknown filesystem type" (ENODEV). ext4 is such a module on a node
// without local disk lines; busybox's mount calls mount(2) with no
// module loading of its own.
func pxeModprobe(t *testing.T, ctx context.Context, c *lab.Cluster, exe string) {
	t.Run("a mount by hand loads its file system's module", func(t *testing.T) {
		if _, err := exec.LookPath("busybox"); err != nil {
			t.Fatal("busybox (Debian busybox) is needed: ", err)
		}
		node := -1
		for _, n := range []int{2, 0} {
			if fs := pxeRun(t, ctx, exe, c.Socket, "bpsh", strconv.Itoa(n), "cat", "/proc/filesystems"); !strings.Contains(fs, "\text4\n") {
				node = n
				break
			}
		}
		if node < 0 {
			t.Fatal("ext4 is loaded on nodes 2 and 0 already: nothing to prove it with")
		}
		ns := strconv.Itoa(node)
		out, err := pxeOutput(ctx, nil, exe, c.Socket, "bpsh", ns, "busybox", "mount", "-t", "ext4", "/dev/null", "/tmp")
		if err == nil {
			t.Fatalf("mount of /dev/null as ext4 succeeded on node %d: %s", node, out)
		}
		if strings.Contains(err.Error(), "No such device") {
			t.Fatalf("node %d: the kernel could not load ext4 for the mount: %v", node, err)
		}
		if fs := pxeRun(t, ctx, exe, c.Socket, "bpsh", ns, "cat", "/proc/filesystems"); !strings.Contains(fs, "\text4\n") {
			t.Fatalf("node %d: ext4 not registered after the mount:\n%s\nmount: %v", node, fs, err)
		}
		t.Logf("node %d: ext4 loaded for a mount by hand; the mount itself: %v", node, strings.TrimSpace(err.Error()))
		// The helper says what it did in the kernel's log (beoklogd → messages.N).
		msgs := filepath.Join(c.LogDir, "messages."+ns)
		err = pxePoll(ctx, pxeServiceWait, func() error {
			if b, _ := os.ReadFile(msgs); !strings.Contains(string(b), "beo-modprobe: fs-ext4: loaded ext4") {
				return fmt.Errorf("%s lacks the helper's line", msgs)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})
}

// pxeKidStatus proves on a real node what the host's kernel cannot: a
// child that a job forks on the node has a ghost on the master that ends
// with the child's own exit status (bpslave takes it from the node
// kernel's process connector, pkg/slave exits.go). bpsh reaps its ghosts
// with wait4, so strace of bpsh shows each ghost's status. Node 0 runs
// sleep from its NFS /usr (nothing sends a job's children).
func pxeKidStatus(t *testing.T, ctx context.Context, c *lab.Cluster, exe string) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Fatalf("strace (Debian's strace, which .ci/run installs): %v", err)
	}
	trace := filepath.Join(t.TempDir(), "strace")
	cmd := exec.CommandContext(ctx, strace, "-f", "-qq", "-e", "trace=wait4", "-e", "signal=none", "-o", trace,
		exe, "bpsh", "0", "sh", "-c", "(sleep 2; exit 3) & wait; exit 0")
	cmd.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("strace bpsh 0 sh -c …: %v\n%s", err, out)
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	// The subshell exits 3, sleep and the main sh 0: one ghost must have
	// been reaped with status 3.
	if !strings.Contains(string(b), "WEXITSTATUS(s) == 3}") {
		t.Errorf("no ghost of bpsh 0 sh -c '(sleep 2; exit 3) & wait' exited 3 (the subshell's status); its wait4 calls:\n%s", b)
	}
}
