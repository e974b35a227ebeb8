package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/sim"
)

// TestInitD: after node_up the master runs each executable of the init.d
// directory in name order with the node number; their output lands in
// node.N, and a failure makes the node error, node.N naming the script.
func TestInitD(t *testing.T) {
	dir := t.TempDir()
	initd := filepath.Join(dir, "init.d")
	if err := os.Mkdir(initd, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"10hello": "echo \"init.d 10hello says $1 $NODE\"\n",
		"20check": "[ \"$1\" = 1 ] && { echo check fails on node $1; exit 4; }\nexit 0\n",
		"30after": "echo \"init.d 30after ran on $1\"\n",
	} {
		if err := os.WriteFile(filepath.Join(initd, name), []byte("#!/bin/sh\n"+text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c := startWith(t, sim.Options{Nodes: 2, InitD: initd, Dir: dir}, 1)
	waitState(t, c, 1, "error", 20*time.Second)
	if st := status(t, c, 0).State; st != "up" {
		t.Errorf("node 0: %q, want up", st)
	}
	logs := make([]string, 2)
	for n := range logs {
		b, _ := os.ReadFile(filepath.Join(dir, "log", fmt.Sprintf("node.%d", n)))
		logs[n] = string(b)
	}
	for _, w := range []struct {
		node int
		want string
		in   bool
	}{
		{0, "init.d 10hello says 0 0", true},
		{0, "init.d 30after ran on 0", true},
		{1, "init.d 10hello says 1 1", true},
		{1, "check fails on node 1", true},
		{1, "init.d: 20check failed: exit status 4", true},
		{1, "30after", false},
	} {
		if strings.Contains(logs[w.node], w.want) != w.in {
			t.Errorf("log/node.%d holds %q: %v, want %v\n%s", w.node, w.want, !w.in, w.in, logs[w.node])
		}
	}
	if i, j := strings.Index(logs[0], "10hello says"), strings.Index(logs[0], "30after ran"); i > j {
		t.Errorf("log/node.0: 30after ran before 10hello:\n%s", logs[0])
	}
}
