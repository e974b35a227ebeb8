package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
)

// TestBpctl: state, mode/owner/group, --reconnect, addresses, and a
// simulated reboot that comes back.
func TestBpctl(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("bpctl changes need root")
	}
	c := start(t, 3)
	for _, tc := range []struct {
		args []string
		want string // bpstat -n -s -m -u -g of node 1 afterwards
	}{
		{[]string{"-S", "1", "-s", "error"}, "1\terror\t---x--x--x\troot\troot"},
		{[]string{"-S", "1", "-s", "up", "-m", "0110", "-u", "nobody", "-g", "65534"}, "1\tup\t---x--x---\tnobody\t" + groupName(65534)},
		{[]string{"-S", "1", "-m", "111", "-u", "0", "-g", "root"}, "1\tup\t---x--x--x\troot\troot"},
	} {
		if r := run(t, c, nil, "bpctl", tc.args...); r.code != 0 {
			t.Fatalf("bpctl %v: %+v", tc.args, r)
		}
		if r := run(t, c, nil, "bpstat", "-n", "-s", "-m", "-u", "-g", "1"); r.out != tc.want+"\n" {
			t.Errorf("after bpctl %v: got %q, want %q", tc.args, r.out, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-S", "0-1", "-a"}, "0 127.1.0.0\n1 127.1.0.1\n"},
		{[]string{"-M", "-a"}, "-1 127.0.0.1\n"},
	} {
		if r := run(t, c, nil, "bpctl", tc.args...); r.out != tc.want {
			t.Errorf("bpctl %v: got %+v, want %q", tc.args, r, tc.want)
		}
	}
	for _, bad := range [][]string{{"-S", "1", "-s", "sleepy"}, {"-S", "1", "-m", "9"}, {"-S", "1", "-u", "no-such-user-beo"}, {"-s", "up"}, {"-S", "1", "-R", "-H"}} {
		if r := run(t, c, nil, "bpctl", bad...); r.code != 2 || r.err == "" {
			t.Errorf("bpctl %v: got %+v, want a usage error", bad, r)
		}
	}
	// --reconnect: the session drops and the node comes back by itself.
	before := status(t, c, 2).Since
	pid := c.Slave(2)
	if r := run(t, c, nil, "bpctl", "-S", "2", "--reconnect"); r.code != 0 {
		t.Fatalf("--reconnect: %+v", r)
	}
	waitFor(t, "node 2 reconnected", 20*time.Second, func() bool {
		n := status(t, c, 2)
		return n.State == "up" && n.Since.After(before)
	})
	if c.Slave(2) != pid {
		t.Errorf("--reconnect restarted bpslave (pid %d → %d); want the same process reconnecting", pid, c.Slave(2))
	}
	// -R: the simulated node "reboots" (its bpslave exits) and comes back.
	pid = c.Slave(0)
	if r := run(t, c, nil, "bpctl", "-S", "0", "-R"); r.code != 0 {
		t.Fatalf("-R: %+v", r)
	}
	if r := run(t, c, nil, "bpstat", "-s", "0"); r.out != "reboot\n" && r.out != "boot\n" && r.out != "up\n" {
		t.Errorf("just after -R: got %q", r.out)
	}
	waitFor(t, "node 0 back with a new bpslave", 30*time.Second, func() bool {
		return c.Slave(0) != 0 && c.Slave(0) != pid && status(t, c, 0).State == "up"
	})
	if r := run(t, c, nil, "bpsh", "0", "echo", "back"); r.out != "back\n" {
		t.Errorf("bpsh after the reboot: got %+v", r)
	}
}

func groupName(gid int) string {
	out, err := exec.Command("getent", "group", "65534").Output()
	if err != nil {
		return "65534"
	}
	return strings.SplitN(string(out), ":", 2)[0]
}

// TestBpstatFlags: every output form against a known cluster.
func TestBpstatFlags(t *testing.T) {
	c := start(t, 4)
	if os.Getuid() == 0 {
		run(t, c, nil, "bpctl", "-S", "3", "-s", "unavailable")
	}
	want3 := "up"
	if os.Getuid() == 0 {
		want3 = "unavailable"
	}
	var compact string
	if want3 == "unavailable" {
		compact = "Node(s) Status      Mode       User Group\n3       unavailable ---x--x--x root root\n0-2     up          ---x--x--x root root\n"
	} else {
		compact = "Node(s) Status Mode       User Group\n0-3     up     ---x--x--x root root\n"
	}
	user := run(t, c, nil, "id", "-un").out
	if os.Getuid() != 0 && strings.TrimSpace(user) != "root" {
		t.Skip("bpstat owner columns assume root-owned nodes")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, compact},
		{[]string{"-c"}, compact},
		{[]string{"-s", "3"}, want3 + "\n"},
		{[]string{"-n", "-a", "1-2"}, "1\t127.1.0.1\n2\t127.1.0.2\n"},
		{[]string{"-sn", "0"}, "0\tup\n"},
		{[]string{"-t"}, "4\n"},
		{[]string{"-t", "allup"}, map[bool]string{true: "3\n", false: "4\n"}[want3 == "unavailable"]},
		{[]string{"-l", "0"}, "Node Address   Status Mode       User Group\n0    127.1.0.0 up     ---x--x--x root root\n"},
		{[]string{"-a", "-1"}, "127.0.0.1\n"},
	} {
		if r := run(t, c, nil, "bpstat", tc.args...); r.out != tc.want || r.code != 0 {
			t.Errorf("bpstat %v:\n got %q (%q, %d)\nwant %q", tc.args, r.out, r.err, r.code, tc.want)
		}
	}
	// --json: the documented schema, exactly these keys.
	r := run(t, c, nil, "bpstat", "--json")
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.out), &doc); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.out)
	}
	if got := keys(doc); !reflect.DeepEqual(got, []string{"master_addr", "nodes"}) {
		t.Errorf("--json top-level keys: got %v", got)
	}
	ns, _ := doc["nodes"].([]any)
	if len(ns) != 4 {
		t.Fatalf("--json: got %d nodes, want 4", len(ns))
	}
	n0, _ := ns[0].(map[string]any)
	wantKeys := []string{"addr", "gid", "group", "macs", "mode", "mode_octal", "node", "since", "state", "uid", "user"}
	if got := keys(n0); !reflect.DeepEqual(got, wantKeys) {
		t.Errorf("--json node keys: got %v, want %v", got, wantKeys)
	}
	if n0["state"] != "up" || n0["addr"] != "127.1.0.0" || n0["mode_octal"] != "0111" || n0["node"] != 0.0 {
		t.Errorf("--json node 0: got %v", n0)
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestBpstatUpdate: -U prints again when a node changes.
func TestBpstatUpdate(t *testing.T) {
	c := start(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	u := exec.CommandContext(ctx, "bpstat", "-U", "--json")
	u.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
	out, err := u.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { u.Process.Kill(); u.Wait() }()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() map[string]any {
		t.Helper()
		select {
		case l, ok := <-lines:
			var d map[string]any
			if !ok || json.Unmarshal([]byte(l), &d) != nil {
				t.Fatalf("bpstat -U --json: got %q", l)
			}
			return d
		case <-time.After(20 * time.Second):
			t.Fatal("bpstat -U printed nothing new")
		}
		return nil
	}
	state := func(d map[string]any, n int) string {
		ns := d["nodes"].([]any)
		return ns[n].(map[string]any)["state"].(string)
	}
	if d := next(); state(d, 1) != "up" {
		t.Fatalf("first table: node 1 %q", state(d, 1))
	}
	c.Kill(1)
	for {
		if d := next(); state(d, 1) == "down" {
			break
		}
	}
}
