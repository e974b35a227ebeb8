package netns

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/kickback"
)

const namesConfig = `interface m0
nodes 8
iprange 10.98.1.100 10.98.1.107
hostrange 10.98.1.200 10.98.1.210
nodename n%N
nodename n%N-ipmi 0.0.1.0 ipmi
node 4 52:54:00:00:00:04
host 00:a0:d1:e9:87:ca 10.98.1.200 smartswitch
`

// namesEtc makes a private etc directory for one side: the given files,
// plus what dynamically linked getent needs (ld.so.cache) when present.
func namesEtc(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	etc := filepath.Join(root, "etc")
	must(t, os.MkdirAll(etc, 0o755))
	if b, err := os.ReadFile("/etc/ld.so.cache"); err == nil {
		must(t, os.WriteFile(filepath.Join(etc, "ld.so.cache"), b, 0o644))
	}
	for name, text := range files {
		must(t, os.WriteFile(filepath.Join(etc, name), []byte(text), 0o644))
	}
	return root
}

// namesIn runs args with root/etc bind-mounted over /etc in a private
// mount namespace inside ns: the real /etc is never touched.
func namesIn(t *testing.T, ns *NS, root string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	sh := append([]string{"unshare", "--mount", "--propagation", "private", "sh", "-c", `mount --bind "$0" /etc && exec "$@"`, filepath.Join(root, "etc")}, args...)
	out, err := ns.Command(ctx, sh...).CombinedOutput()
	return string(out), err
}

func namesExpect(t *testing.T, ns *NS, root string, args []string, want ...string) {
	t.Helper()
	out, err := namesIn(t, ns, root, args...)
	if err != nil {
		t.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		return
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: got %q, want it to contain %q", strings.Join(args, " "), out, w)
		}
	}
}

// namesChecks are the lookups that must work on the master and on nodes.
func namesChecks(t *testing.T, ns *NS, root string) {
	t.Helper()
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"getent", "hosts", ".4"}, []string{"10.98.1.104", "n4"}},
		{[]string{"getent", "hosts", "n4"}, []string{"10.98.1.104"}},
		{[]string{"getent", "hosts", "n7"}, []string{"10.98.1.107"}},
		{[]string{"getent", "hosts", "n4-ipmi"}, []string{"10.98.2.104"}},
		{[]string{"getent", "hosts", "master"}, []string{"10.98.1.1"}},
		{[]string{"getent", "hosts", ".-1"}, []string{"10.98.1.1"}},
		{[]string{"getent", "hosts", "smartswitch"}, []string{"10.98.1.200"}},
		{[]string{"getent", "hosts", "10.98.1.104"}, []string{"n4"}},
		{[]string{"getent", "hosts", "10.98.1.200"}, []string{"smartswitch"}},
		{[]string{"getent", "ethers", "n4"}, []string{"52:54:0:0:0:4"}},
		{[]string{"getent", "ethers", "00:a0:d1:e9:87:ca"}, []string{"smartswitch"}},
		{[]string{"getent", "netgroup", "cluster"}, []string{"n0", "n4", "n7"}},
		{[]string{"getent", "netgroup", "ipmi"}, []string{"n4-ipmi"}},
	} {
		namesExpect(t, ns, root, c.args, c.want...)
	}
	if out, err := namesIn(t, ns, root, "getent", "hosts", "n8"); err == nil {
		t.Errorf("getent hosts n8 (beyond nodes 8): got %q, want not found", out)
	}
}

// TestNames: beonss on the master, kickbackproxy on a node and on a
// non-Scyld host, all resolving with the stock glibc getent and id; the
// daemon gives a node its job's user and nothing else.
func TestNames(t *testing.T) {
	Require(t, "unshare", "getent", "id", "mount", "sh", "bash")
	beo := Beo(t)
	master, node, other := Add(t, "beonm"), Add(t, "beonn"), Add(t, "beono")
	Veth(t, master, "m0", "10.98.1.1/24", node, "n0", "52:54:00:00:00:04")
	node.Run(t, "ip", "addr", "add", "10.98.1.104/24", "dev", "n0")
	// The non-Scyld host sits on its own link, reaching the master's
	// cluster address through the master.
	Veth(t, master, "m1", "10.98.3.1/24", other, "o0", "")
	other.Run(t, "ip", "addr", "add", "10.98.3.250/24", "dev", "o0")
	other.Run(t, "ip", "route", "add", "10.98.1.0/24", "via", "10.98.3.1")
	cfgDir := t.TempDir()
	cfg := filepath.Join(cfgDir, "config")
	must(t, os.WriteFile(cfg, []byte(namesConfig), 0o644))

	// Master: beonss -w writes the names into a private etc.
	hostNSS, err := os.ReadFile("/etc/nsswitch.conf")
	if err != nil {
		hostNSS = []byte("hosts: files dns\nnetgroup: nis\n")
	}
	adminHosts := "127.0.0.1\tlocalhost\n# the admin's line\n10.98.1.99\tadminbox\n"
	mroot := namesEtc(t, map[string]string{
		"hosts":         adminHosts,
		"nsswitch.conf": string(hostNSS),
		"passwd":        "root:x:0:0:root:/root:/bin/sh\nalice:x:4242:4242:Alice:/home/alice:/bin/bash\nbob:x:4243:4243::/home/bob:/bin/sh\n",
		"group":         "root:x:0:\nusers:x:100:bob,alice\nalice:x:4242:\nbob:x:4243:\n",
	})
	if out, err := exec.Command(beo, "beonss", "-config", cfg, "-master", "10.98.1.1", "-w", "-root", mroot).CombinedOutput(); err != nil {
		t.Fatalf("beonss -w: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(filepath.Join(mroot, "etc", "hosts"))
	if !strings.HasPrefix(string(b), adminHosts) {
		t.Errorf("the admin's hosts lines changed:\n%s", b)
	}
	t.Run("master", func(t *testing.T) {
		namesChecks(t, master, mroot)
		namesExpect(t, master, mroot, []string{"getent", "hosts", "adminbox"}, "10.98.1.99")
	})

	// The daemon runs with the master's private etc: it looks users up
	// with the master's getent. Node 4 runs a job of alice (uid 4242).
	daemon := Start(t, master.Command(t.Context(), "unshare", "--mount", "--propagation", "private", "sh", "-c", `mount --bind "$0" /etc && exec "$@"`,
		filepath.Join(mroot, "etc"), beo, "kickbackdaemon", "-config", cfg, "-master", "10.98.1.1", "-listen", "10.98.1.1:3045", "-grant", "4:4242"))
	daemon.WaitLog(t, "serving", 10*time.Second)

	// Node: a fresh root with no nsswitch.conf, as a RAM root starts.
	nroot := namesEtc(t, map[string]string{
		"hosts":  "127.0.0.1\tlocalhost\n",
		"passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"group":  "root:x:0:\n",
	})
	sock := filepath.Join(t.TempDir(), "kickback.sock")
	Start(t, node.Command(t.Context(), beo, "kickbackproxy", "-server", "10.98.1.1", "-root", nroot, "-socket", sock, "-refresh", "1s"))
	Eventually(t, 15*time.Second, "the node's hosts file to hold the cluster", func() bool {
		b, _ := os.ReadFile(filepath.Join(nroot, "etc", "hosts"))
		return strings.Contains(string(b), "n4 .4")
	})
	t.Run("node", func(t *testing.T) {
		namesChecks(t, node, nroot)
		if _, err := namesIn(t, node, nroot, "getent", "passwd", "alice"); err == nil {
			t.Errorf("alice resolves on the node before any job")
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := kickback.Ensure(ctx, sock, 4242); err != nil {
			t.Fatalf("Ensure(4242): %v", err)
		}
		namesExpect(t, node, nroot, []string{"getent", "passwd", "alice"}, "alice:x:4242:4242:Alice:/home/alice:/bin/bash")
		namesExpect(t, node, nroot, []string{"getent", "passwd", "4242"}, "alice")
		namesExpect(t, node, nroot, []string{"id", "alice"}, "uid=4242(alice)", "gid=4242(alice)", "100(users)")
		// Refused: bob has no job on node 4; and the master's group
		// member lists never leak bob.
		if err := kickback.Ensure(ctx, sock, 4243); err == nil || !strings.Contains(err.Error(), "no job of uid 4243") {
			t.Errorf("Ensure(4243): got %v, want a refusal", err)
		}
		if _, err := namesIn(t, node, nroot, "getent", "passwd", "bob"); err == nil {
			t.Errorf("bob resolves on the node")
		}
		if g, _ := os.ReadFile(filepath.Join(nroot, "etc", "group")); strings.Contains(string(g), "bob") {
			t.Errorf("bob leaked into the node's group file:\n%s", g)
		}
	})

	// A non-Scyld host: names yes, users no.
	oroot := namesEtc(t, map[string]string{"hosts": "127.0.0.1\tlocalhost\n", "nsswitch.conf": string(hostNSS)})
	osock := filepath.Join(t.TempDir(), "kickback.sock")
	Start(t, other.Command(t.Context(), beo, "kickbackproxy", "-server", "10.98.1.1:3045", "-root", oroot, "-socket", osock))
	Eventually(t, 15*time.Second, "the other host's hosts file", func() bool {
		b, _ := os.ReadFile(filepath.Join(oroot, "etc", "hosts"))
		return strings.Contains(string(b), "n4 .4")
	})
	t.Run("non-scyld", func(t *testing.T) {
		namesChecks(t, other, oroot)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := kickback.Ensure(ctx, osock, 4242); err == nil || !strings.Contains(err.Error(), "not a node") {
			t.Errorf("Ensure from a non-node: got %v, want a refusal", err)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		out := node.Run(t, "bash", "-c", `exec 3<>/dev/tcp/10.98.1.1/3045; printf 'junk\n' >&3; head -n1 <&3`)
		if !strings.Contains(out, `"err"`) {
			t.Errorf("garbage request: got %q, want an error reply", out)
		}
		// Still serving: a fresh one-shot fetch works.
		b, err := node.Command(t.Context(), beo, "kickbackproxy", "-server", "10.98.1.1", "-root", nroot, "-once").CombinedOutput()
		if err != nil {
			t.Errorf("kickbackproxy -once after garbage: %v\n%s", err, b)
		}
		namesExpect(t, node, nroot, []string{"getent", "hosts", "n3"}, "10.98.1.103")
	})
}
