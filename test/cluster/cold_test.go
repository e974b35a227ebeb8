package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/sim"
)

// coldNodesEnv sets how many nodes TestColdFanOut starts. bench/process
// runs it with 1000: the size at which, before the master bounded its
// file sends and yamux stopped timing out busy sessions, a cold
// `bpsh -a true` failed 853 of 1000 jobs ("connection write timeout",
// "client did not attach its stdio streams").
const coldNodesEnv = "BEO_COLD_NODES"

// TestColdFanOut runs one program on every node at once with every
// node's cache empty, so all of them need the program and its libraries
// at the same moment; then again, warm. Every node must answer exactly
// once, and nothing may fail.
func TestColdFanOut(t *testing.T) {
	n := 24 // more nodes than the master sends files to at once
	if v := os.Getenv(coldNodesEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("%s=%q: want a node count", coldNodesEnv, v)
		}
	}
	budget := 60*time.Second + time.Duration(n)*150*time.Millisecond
	ping := 4 * time.Second
	if n > 100 {
		ping = 60 * time.Second // a loaded host must not drop heartbeats mid-test
	}
	c, err := sim.Start(context.Background(), sim.Options{Nodes: n, Dir: t.TempDir(), Exe: beoBin, PingTimeout: ping})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	if err := c.WaitUp(ctx, n); err != nil {
		t.Fatal(err)
	}
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprintf("%3d: ok", i)
	}
	for _, pass := range []string{"cold", "warm"} {
		start := time.Now()
		cmd := exec.CommandContext(ctx, "bpsh", "-a", "-p", "-s", "echo", "ok")
		cmd.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		t.Logf("%s: %d nodes in %s", pass, n, time.Since(start).Round(time.Millisecond))
		if err != nil || e.Len() != 0 {
			errs := strings.Split(strings.TrimSpace(e.String()), "\n")
			t.Fatalf("%s: bpsh -a: %v; %d error lines, first: %q", pass, err, len(errs), errs[0])
		}
		if got := strings.Split(strings.TrimSuffix(o.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%s: got %d lines, want one \"ok\" from each of %d nodes", pass, len(got), n)
		}
	}
	cl := client(t, c)
	cmd := cl.Command(n-1, "echo", "ok")
	if err := cmd.Run(); err != nil || cmd.Sent != 0 {
		t.Errorf("after the cold run, node %d: sent %d bytes (%v), want 0", n-1, cmd.Sent, err)
	}
}

// TestStdinStreams: a bpsh whose stdin is /dev/null (or -n) gives the
// remote process /dev/null and opens no stdin stream; any other stdin is
// forwarded through a pipe.
func TestStdinStreams(t *testing.T) {
	c := start(t, 1)
	for _, tc := range []struct {
		name  string
		stdin *strings.Reader // nil: /dev/null
		args  []string
		want  string
	}{
		{"/dev/null", nil, []string{"0", "readlink", "/proc/self/fd/0"}, "/dev/null\n"},
		{"-n", strings.NewReader("x"), []string{"-n", "0", "readlink", "/proc/self/fd/0"}, "/dev/null\n"},
		{"data", strings.NewReader("hello\n"), []string{"0", "cat"}, "hello\n"},
		{"a pipe", strings.NewReader(""), []string{"0", "sh", "-c", "readlink /proc/self/fd/0 | cut -d: -f1"}, "pipe\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r result
			if tc.stdin == nil {
				r = run(t, c, nil, "bpsh", tc.args...)
			} else {
				r = run(t, c, tc.stdin, "bpsh", tc.args...)
			}
			if r.code != 0 || r.out != tc.want {
				t.Errorf("got %+v, want output %q", r, tc.want)
			}
		})
	}
}
