package cluster

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/sim"
)

// TestSimSecondShell runs `beo sim` as a user would — as nobody when the
// test is root, else as the test's own user: the owner of a simulation
// administers it (bpctl, bplib), and the export line it prints is all a
// second shell needs for bpstat, bpsh, bpctl and beostat. Another user
// may not change the nodes.
func TestSimSecondShell(t *testing.T) {
	var owner *syscall.Credential
	if os.Getuid() == 0 {
		owner = nobody
		os.Chmod(filepath.Dir(beoBin), 0o755) // let nobody reach the binary
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	simCmd := exec.CommandContext(ctx, beoBin, "sim", "-n", "2")
	simCmd.SysProcAttr = &syscall.SysProcAttr{Credential: owner}
	simCmd.Dir = "/"
	simCmd.Env = append(os.Environ(), "TMPDIR=/tmp")
	simCmd.Stderr = os.Stderr
	stdout, err := simCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := simCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		simCmd.Process.Signal(syscall.SIGTERM)
		simCmd.Wait()
	}()
	var printed strings.Builder
	export := ""
	sc := bufio.NewScanner(stdout)
	for export == "" && sc.Scan() {
		printed.WriteString(sc.Text() + "\n")
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "export ") {
			export = l
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if export == "" {
		t.Fatalf("beo sim printed no export line:\n%s", printed.String())
	}
	for _, v := range []string{"BEO_SOCKET=", dashboard.URLEnv + "=", "PATH="} {
		if !strings.Contains(export, v) {
			t.Errorf("export line %q: no %s", export, v)
		}
	}
	// A second shell: nothing but a minimal PATH and the export line.
	shell := func(cred *syscall.Credential, script string) (string, error) {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", export+"\n"+script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	out, err := shell(owner, "bpctl -S 1 -s unavailable && bpstat -n -s 1 && bpsh 0 echo hi && bplib -a /bin/true && beostat -b")
	if err != nil || !strings.Contains(out, "1\tunavailable\n") || !strings.Contains(out, "hi\n") {
		t.Fatalf("second shell as the owner: %v\n%s", err, out)
	}
	// beostat -b: a header and a line per node, both with stats.
	lines := strings.Split(strings.TrimSpace(out[strings.Index(out, "Node "):]), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "0 ") || !strings.HasPrefix(lines[2], "1 ") || strings.Contains(out, "no stats") {
		t.Errorf("beostat -b in the second shell: got\n%s\nwant a header and a line for nodes 0 and 1", out)
	}
	if owner == nil {
		return // no other user to try
	}
	// The simulation's directory is private to its owner: open it up, so
	// that another user reaches the master and the master says no.
	dir := strings.Fields(export[strings.Index(export, "BEO_SOCKET="):])[0]
	dir = filepath.Dir(strings.TrimPrefix(dir, "BEO_SOCKET="))
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	other := &syscall.Credential{Uid: 65533, Gid: 65534}
	if out, err := shell(other, "bpctl -S 0 -s unavailable"); err == nil || !strings.Contains(out, "permission denied") {
		t.Errorf("bpctl as uid 65533 in nobody's simulation: %v %q; want permission denied", err, out)
	}
	if out, err := shell(&syscall.Credential{}, "bpctl -S 1 -s up && bpstat -n -s 1"); err != nil || out != "1\tup\n" {
		t.Errorf("bpctl as root in nobody's simulation: %v %q; want node 1 up", err, out)
	}
}

// TestBeostatSim: with Options.Stats every simulated node sends stats
// once connected, and beostat lists them through the master's dashboard.
func TestBeostatSim(t *testing.T) {
	c := startWith(t, sim.Options{Nodes: 3, Stats: true, StatsInterval: 200 * time.Millisecond}, 3)
	if c.StatsURL == "" {
		t.Fatal("no StatsURL with Options.Stats")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitStats(ctx, 3); err != nil {
		t.Fatal(err)
	}
	beostat := func(args ...string) result {
		t.Helper()
		cmd := exec.CommandContext(ctx, beoBin, append([]string{"beostat"}, args...)...)
		cmd.Env = append(os.Environ(), dashboard.URLEnv+"="+c.StatsURL)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		code := 0
		if err := cmd.Run(); err != nil {
			code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
		}
		return result{o.String(), e.String(), code}
	}
	r := beostat("-b")
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if r.code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "Node Status") {
		t.Fatalf("beostat -b: %+v; want a header and 3 nodes", r)
	}
	for i, l := range lines[1:] {
		if f := strings.Fields(l); len(f) < 2 || f[0] != string(rune('0'+i)) || f[1] != "up" {
			t.Errorf("beostat -b line %q: want node %d up", l, i)
		}
	}
	if r := beostat("-N", "2", "-m"); r.code != 0 || !strings.HasPrefix(r.out, "Node 2 (up) 127.1.0.2: last sample") {
		t.Errorf("beostat -N 2 -m: %+v", r)
	}
}
