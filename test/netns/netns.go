// Package netns holds the root-only suites that run beo daemons in network
// namespaces the tests create, talking to real third-party clients
// (busybox udhcpc, atftp, curl) over veth pairs — never a real interface.
// This file is their shared helper: namespaces with unique names (the test
// pid and a counter), veth links, commands run inside, and cleanup.
//
// The suites need root and iproute2; they skip with a clear message when
// either is missing. `make test-root` builds bin/beo and passes its path in
// BEO_BIN; without it the tests build the binary themselves.
package netns

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beo-cluster/beo/test/testio"
)

var seq atomic.Int64

// Require skips t unless it runs as root with every tool on PATH.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netns suite: needs root (run `make test-root` as root)")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("netns suite: %s not installed", tool)
		}
	}
}

// Beo returns the beo binary under test: $BEO_BIN, else one built now.
func Beo(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BEO_BIN"); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	out := filepath.Join(t.TempDir(), "beo")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build beo: %v\n%s", err, b)
	}
	return out
}

// NS is a network namespace created for one test.
type NS struct{ Name string }

// Add creates a namespace named prefix-PID-N with lo up, deleted when
// the test ends.
func Add(t testing.TB, prefix string) *NS {
	t.Helper()
	ns := &NS{Name: fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))}
	run(t, "ip", "netns", "add", ns.Name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns.Name).Run() })
	ns.Run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// Run runs a command inside ns and returns its stdout; failure is fatal.
func (ns *NS) Run(t testing.TB, args ...string) string {
	t.Helper()
	return run(t, append([]string{"ip", "netns", "exec", ns.Name}, args...)...)
}

// Command prepares a command to run inside ns.
func (ns *NS) Command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name}, args...)...)
}

// Veth links a (interface aif) and b (bif) with a veth pair. Addresses
// ("10.99.0.1/24") and MACs may be empty. DAD is off on both ends so
// IPv6 link-local addresses are usable at once.
func Veth(t testing.TB, a *NS, aif, aaddr string, b *NS, bif, bmac string) {
	t.Helper()
	tmpA, tmpB := fmt.Sprintf("bt%da", seq.Add(1)), fmt.Sprintf("bt%db", seq.Add(1))
	run(t, "ip", "link", "add", tmpA, "type", "veth", "peer", "name", tmpB)
	run(t, "ip", "link", "set", tmpA, "netns", a.Name, "name", aif)
	run(t, "ip", "link", "set", tmpB, "netns", b.Name, "name", bif)
	for _, end := range []struct {
		ns   *NS
		ifc  string
		addr string
		mac  string
	}{{a, aif, aaddr, ""}, {b, bif, "", bmac}} {
		end.ns.Run(t, "sysctl", "-qw", "net.ipv6.conf."+end.ifc+".accept_dad=0")
		if end.mac != "" {
			end.ns.Run(t, "ip", "link", "set", end.ifc, "address", end.mac)
		}
		if end.addr != "" {
			end.ns.Run(t, "ip", "addr", "add", end.addr, "dev", end.ifc)
		}
		end.ns.Run(t, "ip", "link", "set", end.ifc, "up")
	}
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// Daemon is a process started by a test, its stderr collected.
type Daemon struct {
	Cmd *exec.Cmd
	log *testio.Buffer
}

// Start starts cmd, collecting stderr, and kills it (by pid) when the
// test ends.
func Start(t testing.TB, cmd *exec.Cmd) *Daemon {
	t.Helper()
	d := &Daemon{Cmd: cmd, log: &testio.Buffer{}}
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", strings.Join(cmd.Args, " "), d.Log())
		}
	})
	return d
}

// Log returns what the daemon wrote so far.
func (d *Daemon) Log() string { return d.log.String() }

// WaitLog polls the daemon's output for substr until the deadline.
func (d *Daemon) WaitLog(t testing.TB, substr string, within time.Duration) {
	t.Helper()
	Eventually(t, within, "daemon output contains "+substr, func() bool { return strings.Contains(d.Log(), substr) })
}

// Eventually polls cond every 20 ms until it holds or within passes.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still not true: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
