// Package cluster holds the loopback-cluster tests: a real bpmaster and
// real bpslave processes (the binary under test, built once per run) on
// 127.x addresses, driven through the real client commands.
//
// What they cover: bpsh (every flag, node specs, stdin fan-out, exit
// statuses, signals incl. Ctrl-C / Ctrl-Z / SIGCONT, cwd, environment,
// rlimits as root and as another user, 1 GiB byte-exact through a slow
// reader), the content cache (a second run sends no bytes; bplib-staged
// libraries are never sent), bpcp (both ways, node to node, -p, -r,
// several sources, atomic landing, interrupted copies, errors naming file
// and node), bpctl (state, -m/-u/-g, --reconnect, addresses, a simulated
// reboot coming back), bpstat (every form, --json keys, -U, -p, -P),
// permissions (node modes, owners, groups, unavailable/down nodes), and
// faults: a node killed mid-job, the master restarted mid-job, a node
// whose heartbeat stops, node_up failing, SIGHUP reloading the config,
// garbage on both listeners (logged), another user snooping on a job's
// streams or signalling it; ghosts (kill, pkill -f, STOP/CONT on the
// ghost of a remote process or of a node-side child) and one cgroup per
// job (nothing of a job outlives it, its bpslave or its master). Tests
// needing another identity skip unless run as root; those needing
// cgroups skip when the simulation has none.
package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/sim"
)

var beoBin string

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" { // this binary re-run as another user
		os.Exit(helper(h))
	}
	dir, err := os.MkdirTemp("", "beo-cluster-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	beoBin = filepath.Join(dir, "beo")
	build := exec.Command("go", "build", "-o", beoBin, "../..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build beo: %v\n%s", err, out)
		os.Exit(1)
	}
	for _, a := range []string{"bpsh", "bpstat", "bpctl", "bpcp", "bplib", "beomap", "beorun", "mpprun", "beorsh", "bpmove"} {
		os.Symlink(beoBin, filepath.Join(dir, a))
	}
	os.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// start runs an n-node simulated cluster for the test.
func start(t *testing.T, n int) *sim.Cluster {
	t.Helper()
	return startWith(t, sim.Options{Nodes: n}, n)
}

// startWith runs a simulated cluster with o (Dir, Exe and PingTimeout
// filled in if unset) and waits for up nodes to be up.
func startWith(t *testing.T, o sim.Options, up int) *sim.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Exe == "" {
		o.Exe = beoBin
	}
	if o.PingTimeout == 0 {
		// A node gets two pings (every half of this) to answer: under
		// the race detector, beside other packages' tests, 64 MiB of
		// output on the same session once kept a pong out for longer
		// than 4 s and the node was declared down mid-job. Tests of a
		// silent node set their own.
		o.PingTimeout = 10 * time.Second
	}
	c, err := sim.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	if err := c.WaitUp(ctx, up); err != nil {
		t.Fatal(err)
	}
	return c
}

type result struct {
	out, err string
	code     int
}

// run runs a client command against c with a deadline.
func run(t *testing.T, c *sim.Cluster, stdin io.Reader, name string, args ...string) result {
	t.Helper()
	return runAs(t, c, nil, stdin, name, args...)
}

// runAs is run as another user (cred nil: as the test).
func runAs(t *testing.T, c *sim.Cluster, cred *syscall.Credential, stdin io.Reader, name string, args ...string) result {
	t.Helper()
	return runIn(t, c, "/", cred, stdin, name, args...)
}

func TestBpshBasics(t *testing.T) {
	c := start(t, 3)
	host, _ := os.Hostname()
	// A script without #!: the kernel refuses it, execvp and shells run
	// it with /bin/sh, and so does bpsh (the master ships /bin/sh too).
	script := filepath.Join(t.TempDir(), "job")
	if err := os.WriteFile(script, []byte("echo $0 $1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		in   string
		want result
	}{
		{"one node", []string{"1", "hostname"}, "", result{out: host + "\n"}},
		{"exit status", []string{"2", "sh", "-c", "exit 7"}, "", result{code: 7}},
		{"highest status", []string{"0-2", "sh", "-c", "exit $BPROC_RANK"}, "", result{code: 2}},
		{"stderr apart", []string{"0", "sh", "-c", "echo out; echo err >&2"}, "", result{out: "out\n", err: "err\n"}},
		{"stdin", []string{"1", "cat"}, "hello\n", result{out: "hello\n"}},
		{"stdin to every node", []string{"-p", "-s", "0,2", "cat"}, "x\n", result{out: "  0: x\n  2: x\n"}},
		{"prefix sequential", []string{"-a", "-p", "-s", "sh", "-c", "echo $BPROC_RANK $BPROC_PROGNAME"}, "",
			result{out: "  0: 0 sh\n  1: 1 sh\n  2: 2 sh\n"}},
		{"-- ends the flags", []string{"-p", "--", "1", "echo", "x"}, "", result{out: "  1: x\n"}},
		{"-- after the node", []string{"-p", "1", "--", "echo", "-x"}, "", result{out: "  1: -x\n"}},
		{"sequential by node number", []string{"-p", "-s", "2,0,1,0", "sh", "-c", "echo $BPROC_RANK"}, "",
			result{out: "  0: 1\n  0: 3\n  1: 2\n  2: 0\n"}},
		{"divider", []string{"-d", "0-1", "echo", "x"}, "",
			result{out: "0\t" + strings.Repeat("-", 69) + "\nx\n1\t" + strings.Repeat("-", 69) + "\nx\n"}},
		{"signal death", []string{"1", "sh", "-c", "kill -9 $$"}, "", result{code: 255, err: "1: killed by signal 9 (killed)\n"}},
		{"master runs locally", []string{"-1", "echo", "here"}, "", result{out: "here\n"}},
		{"a script without #!", []string{"1", script, "x"}, "", result{out: script + " x\n"}},
		{"a script without #! on the master", []string{"-1", script, "y"}, "", result{out: script + " y\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := run(t, c, strings.NewReader(tc.in), "bpsh", tc.args...)
			if got != tc.want {
				t.Errorf("bpsh %v:\n got %+v\nwant %+v", tc.args, got, tc.want)
			}
		})
	}
}

func TestBpshSignalReachesRemote(t *testing.T) {
	c := start(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bpsh", "-a", "-p", "sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.1; done")
	cmd.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
	var out bytes.Buffer
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(&out, pw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for both nodes to be ready, then TERM bpsh.
	buf := make([]byte, 4096)
	seen := ""
	for strings.Count(seen, "ready") < 2 {
		n, err := pr.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		seen += string(buf[:n])
	}
	go io.Copy(io.Discard, pr)
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if got := strings.Count(out.String(), "got TERM"); got != 2 {
		t.Errorf("remote processes that saw TERM: got %d, want 2 (output %q, err %v)", got, out.String(), err)
	}
}

func TestBpshLargeOutputExact(t *testing.T) {
	c := start(t, 1)
	const size = 64 << 20
	got := run(t, c, nil, "bpsh", "0", "head", "-c", fmt.Sprint(size), "/dev/zero")
	if got.code != 0 || len(got.out) != size {
		t.Fatalf("got %d bytes, code %d, stderr %q; want %d bytes", len(got.out), got.code, got.err, size)
	}
}

func TestNodeKilledMidJob(t *testing.T) {
	c := start(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bpsh", "1", "sleep", "20")
	cmd.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
	var e bytes.Buffer
	cmd.Stderr = &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 255 || !strings.HasPrefix(e.String(), "1: ") {
		t.Errorf("got err %v, stderr %q; want exit 255 and a message naming node 1", err, e.String())
	}
}

func TestBpcpRoundTrip(t *testing.T) {
	c := start(t, 2)
	src := filepath.Join(t.TempDir(), "data")
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o640); err != nil {
		t.Fatal(err)
	}
	if r := run(t, c, nil, "bpcp", src, "1:/tmp/data"); r.code != 0 {
		t.Fatalf("bpcp to node: %+v", r)
	}
	if r := run(t, c, nil, "bpcp", "1:/tmp/data", "0:/tmp/copy"); r.code != 0 {
		t.Fatalf("bpcp node to node: %+v", r)
	}
	back := filepath.Join(t.TempDir(), "back")
	if r := run(t, c, nil, "bpcp", "0:/tmp/copy", back); r.code != 0 {
		t.Fatalf("bpcp from node: %+v", r)
	}
	got, err := os.ReadFile(back)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Errorf("copy differs: got %d bytes, want %d", len(got), len(data))
	}
	if r := run(t, c, nil, "bpcp", "1:/nonexistent", back); r.code == 0 || !strings.Contains(r.err, "node 1") {
		t.Errorf("missing file: got %+v, want an error naming node 1", r)
	}
}

func TestBpstat(t *testing.T) {
	c := start(t, 3)
	got := run(t, c, nil, "bpstat")
	if !strings.Contains(got.out, "0-2") || !strings.Contains(got.out, "up") {
		t.Errorf("bpstat: got %q, want nodes 0-2 up", got.out)
	}
	if r := run(t, c, nil, "bpstat", "-s", "1"); r.out != "up\n" {
		t.Errorf("bpstat -s 1: got %q, want %q", r.out, "up\n")
	}
}

func TestBpctlState(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("bpctl changes need root")
	}
	c := start(t, 3)
	if r := run(t, c, nil, "bpctl", "-S", "1", "-s", "unavailable"); r.code != 0 {
		t.Fatalf("bpctl: %+v", r)
	}
	if r := run(t, c, nil, "bpstat", "-s", "1"); r.out != "unavailable\n" {
		t.Errorf("after bpctl -s unavailable: got %q", r.out)
	}
	// Each group's actions act on its own -S, in order; the third group's
	// class sees what the first two did.
	r := run(t, c, nil, "bpctl", "-S", "0", "-s", "error", "-S", "1", "-s", "up", "-S", "allerror", "-a", "-S", "2", "-s", "unavailable")
	if r.code != 0 || !strings.HasPrefix(r.out, "0 ") || strings.Count(r.out, "\n") != 1 {
		t.Fatalf("bpctl with four groups: %+v", r)
	}
	if r := run(t, c, nil, "bpstat", "-s", "0-2"); r.out != "error\nup\nunavailable\n" {
		t.Errorf("after bpctl -S 0 -s error -S 1 -s up -S 2 -s unavailable: got %q", r.out)
	}
	// A bad spec in a later group: nothing is changed.
	if r := run(t, c, nil, "bpctl", "-S", "0", "-s", "up", "-S", "9", "-s", "up"); r.code == 0 || !strings.Contains(r.err, "9") {
		t.Errorf("bpctl with a bad second spec: %+v", r)
	}
	if r := run(t, c, nil, "bpstat", "-s", "0"); r.out != "error\n" {
		t.Errorf("a bad second spec changed node 0: got %q", r.out)
	}
}

// TestGarbageRejected sends random bytes and truncated frames to the node
// port and the client socket; the master must go on serving.
func TestGarbageRejected(t *testing.T) {
	c := start(t, 1)
	junk := [][]byte{
		{0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3}, // a truncated TLS record
		{0, 0, 0, 50, '{', '"'},                 // a truncated wire frame
		bytes.Repeat([]byte{0xff}, 4096),
	}
	rnd := make([]byte, 1<<16)
	rand.Read(rnd)
	junk = append(junk, rnd)
	for _, j := range junk {
		for _, target := range [][2]string{{"tcp", c.Master}, {"unix", c.Socket}} {
			// From node 0's own address, so the master gets as far as TLS.
			d := net.Dialer{Timeout: 5 * time.Second}
			if target[0] == "tcp" {
				d.LocalAddr = &net.TCPAddr{IP: sim.NodeAddr(0).AsSlice()}
			}
			conn, err := d.Dial(target[0], target[1])
			if err != nil {
				t.Fatalf("dial %s: %v", target[1], err)
			}
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			conn.Write(j)
			io.Copy(io.Discard, conn) // until the master closes or the deadline
			conn.Close()
		}
	}
	if r := run(t, c, nil, "bpsh", "0", "echo", "still serving"); r.out != "still serving\n" {
		t.Errorf("after garbage: got %+v", r)
	}
}

// TestNonRootUser: a user runs as themself, and a node whose mode shuts
// them out runs nothing.
func TestNonRootUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to act as another user")
	}
	c := start(t, 2)
	// Let "nobody" reach the binary and the socket.
	for d := c.Dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	os.Chmod(filepath.Dir(beoBin), 0o755)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	if r := runAs(t, c, nobody, nil, "bpsh", "0", "id", "-u"); r.out != "65534\n" || r.code != 0 {
		t.Errorf("bpsh as nobody: got %+v, want uid 65534", r)
	}
	if r := run(t, c, nil, "bpctl", "-S", "1", "-m", "0100"); r.code != 0 {
		t.Fatalf("bpctl -m: %+v", r)
	}
	open := t.TempDir()
	os.Chmod(open, 0o777)
	marker := filepath.Join(open, "ran")
	r := runAs(t, c, nobody, nil, "bpsh", "1", "sh", "-c", "echo > "+marker)
	if r.code == 0 || !strings.Contains(r.err, "permission denied") {
		t.Errorf("bpsh on a closed node: got %+v, want a permission error", r)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the command ran on a node the user may not use")
	}
	if r := runAs(t, c, nobody, nil, "bpctl", "-S", "0", "-s", "unavailable"); r.code == 0 {
		t.Errorf("a non-root bpctl succeeded: %+v", r)
	}
}
