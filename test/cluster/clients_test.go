package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestClientsOnNodes: bpsh, bpstat, bpctl and bpcp run on a node work
// against the master as the calling user, through the node's bpslave;
// -1 and master: are the master, never the node.
func TestClientsOnNodes(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: node views (where the node's files are its own) and acting as nobody")
	}
	c := start(t, 2)
	host, _ := os.Hostname()
	upper := func(p string) string { return filepath.Join(c.Dir, "nodes", "0", p) } // what node 0 wrote
	onlyOnMaster := func(t *testing.T, p string) {
		t.Helper()
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s is not on the master: %v", p, err)
		}
		if _, err := os.Stat(upper(p)); err == nil {
			t.Errorf("%s landed on node 0 (%s)", p, upper(p))
		}
	}
	// Let "nobody" reach the binary and the socket.
	for d := c.Dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	os.Chmod(filepath.Dir(beoBin), 0o755)

	t.Run("bpstat", func(t *testing.T) {
		r := run(t, c, nil, "bpsh", "0", "bpstat")
		if r.code != 0 || !strings.Contains(r.out, "0-1") || !strings.Contains(r.out, "up") {
			t.Errorf("bpsh 0 bpstat: got %+v, want both nodes up", r)
		}
	})
	t.Run("the node's socket", func(t *testing.T) {
		if r := run(t, c, nil, "bpsh", "0", "sh", "-c", "echo $BEO_SOCKET; test -S $BEO_SOCKET"); r != (result{out: "/run/beowulf/bpmaster.sock\n"}) {
			t.Errorf("a job's BEO_SOCKET: got %+v, want the node's own socket", r)
		}
	})
	t.Run("node to node", func(t *testing.T) {
		if r := run(t, c, nil, "bpsh", "0", "bpsh", "1", "hostname"); r != (result{out: host + "\n"}) {
			t.Errorf("bpsh 0 bpsh 1 hostname: got %+v", r)
		}
	})
	t.Run("-1 is the master", func(t *testing.T) {
		dir := t.TempDir()
		// The proof works: a file a job writes on node 0 is node 0's.
		onNode := filepath.Join(dir, "node")
		if r := run(t, c, nil, "bpsh", "0", "touch", onNode); r.code != 0 {
			t.Fatalf("bpsh 0 touch: %+v", r)
		}
		if _, err := os.Stat(onNode); err == nil {
			t.Fatalf("a file node 0 wrote is on the master: the view does not tell them apart")
		}
		mark := filepath.Join(dir, "master")
		if r := run(t, c, nil, "bpsh", "0", "bpsh", "-1", "sh", "-c", "echo x; touch "+mark); r != (result{out: "x\n"}) {
			t.Errorf("bpsh 0 bpsh -1: got %+v", r)
		}
		onlyOnMaster(t, mark)
		if r := run(t, c, strings.NewReader("in\n"), "bpsh", "0", "bpsh", "-1", "sh", "-c", "cat; echo err >&2; exit 3"); r != (result{out: "in\n", err: "err\n", code: 3}) {
			t.Errorf("bpsh -1 stdio and status: got %+v", r)
		}
		if r := run(t, c, nil, "bpsh", "0", "bpsh", "-1", "sh", "-c", "kill -9 $$"); r.code != 255 || !strings.Contains(r.err, "killed by signal 9") {
			t.Errorf("bpsh -1 killed by a signal: got %+v", r)
		}
		if r := run(t, c, nil, "bpsh", "0", "bpsh", "-1", "no-such-program-anywhere"); r.code == 0 || !strings.Contains(r.err, "not found") {
			t.Errorf("bpsh -1 of a missing program: got %+v, want not found", r)
		}
	})
	t.Run("bpcp master:", func(t *testing.T) {
		dir := t.TempDir()
		if r := run(t, c, nil, "bpsh", "0", "sh", "-c", "echo node-data > /tmp/clients-src"); r.code != 0 {
			t.Fatalf("write on node 0: %+v", r)
		}
		for _, spec := range []string{"master", "-1", ".-1"} {
			dst := filepath.Join(dir, "x"+spec)
			if r := run(t, c, nil, "bpsh", "0", "bpcp", "/tmp/clients-src", spec+":"+dst); r.code != 0 {
				t.Errorf("bpsh 0 bpcp FILE %s:%s: %+v", spec, dst, r)
				continue
			}
			onlyOnMaster(t, dst)
			if b, _ := os.ReadFile(dst); string(b) != "node-data\n" {
				t.Errorf("%s: got %q, want the node's file", dst, b)
			}
		}
		// And back: the master's file onto the node.
		from := filepath.Join(dir, "from-master")
		os.WriteFile(from, []byte("master-data\n"), 0o644)
		if r := run(t, c, nil, "bpsh", "0", "bpcp", "master:"+from, "/tmp/clients-back"); r.code != 0 {
			t.Fatalf("bpsh 0 bpcp master:FILE: %+v", r)
		}
		if b, _ := os.ReadFile(upper("tmp/clients-back")); string(b) != "master-data\n" {
			t.Errorf("on node 0: got %q", b)
		}
	})
	t.Run("nobody", func(t *testing.T) {
		nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
		if r := runAs(t, c, nobody, nil, "bpsh", "0", "bpsh", "-1", "id", "-u"); r != (result{out: "65534\n"}) {
			t.Errorf("bpsh 0 bpsh -1 id -u as nobody: got %+v", r)
		}
		r := runAs(t, c, nobody, nil, "bpsh", "0", "bpctl", "-S", "1", "-s", "unavailable")
		if r.code == 0 || !strings.Contains(r.err, "only root") {
			t.Errorf("bpctl as nobody on a node: got %+v, want refused", r)
		}
		if st := status(t, c, 1); st.State != "up" {
			t.Errorf("node 1: %s after a refused bpctl", st.State)
		}
		dst := filepath.Join(t.TempDir(), "nobody") // root's 0700 directory
		r = runAs(t, c, nobody, nil, "bpsh", "0", "bpcp", "/etc/hostname", "master:"+dst)
		if r.code == 0 || !strings.Contains(r.err, "permission denied") {
			t.Errorf("bpcp as nobody into root's directory: got %+v, want permission denied", r)
		}
		if _, err := os.Stat(dst); err == nil {
			t.Errorf("nobody wrote %s on the master", dst)
		}
	})
}
