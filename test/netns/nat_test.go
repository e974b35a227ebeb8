package netns

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The IP forwarding suite: a master namespace with a cluster side (vs,
// 10.97.0.1/24, the node's namespace behind it) and an outside side (vo,
// 192.0.2.1/24) leading to an "outside" namespace (192.0.2.80) that
// serves HTTP and has no route to the cluster network: only masquerading
// lets the node's traffic come back.
const (
	natNodeMAC   = "52:54:00:00:97:01"
	natOutside   = "192.0.2.80"
	natDNS       = "192.0.2.53"
	natHTTP      = "http://" + natOutside + ":8000/hello"
	natGreeting  = "hello from outside"
	natConfigFmt = `# ipforward netns test
interface vs
nodes 2
iprange 10.97.0.100 10.97.0.101
server http 8097
node 0 ` + natNodeMAC + `
`
)

// natScript prints what udhcpc learned, router and DNS included.
const natScript = `#!/bin/sh
[ "$1" = bound ] || exit 0
echo "ip=$ip"
echo "router=$router"
echo "dns=$dns"
`

type natEnv struct {
	bin                   string
	dir                   string
	master, node, outside *NS
}

func natSetup(t *testing.T) *natEnv {
	Require(t, "busybox", "curl", "nft")
	e := &natEnv{bin: Beo(t), dir: t.TempDir(),
		master: Add(t, "beonatm"), node: Add(t, "beonatn"), outside: Add(t, "beonato")}
	Veth(t, e.master, "vs", "10.97.0.1/24", e.node, "vc", natNodeMAC)
	Veth(t, e.master, "vo", "192.0.2.1/24", e.outside, "vx", "")
	e.outside.Run(t, "ip", "addr", "add", natOutside+"/24", "dev", "vx")
	must(t, os.MkdirAll(e.path("www"), 0o755))
	must(t, os.WriteFile(e.path("www/hello"), []byte(natGreeting), 0o644))
	must(t, os.WriteFile(e.path("udhcpc.sh"), []byte(natScript), 0o755))
	must(t, os.Mkdir(e.path("boot"), 0o755))
	Start(t, e.outside.Command(context.Background(), "busybox", "httpd", "-f", "-p", natOutside+":8000", "-h", e.path("www")))
	Eventually(t, 10*time.Second, "httpd answers in the outside namespace", func() bool {
		out, err := e.outside.Command(context.Background(), "curl", "-s", "-m", "1", natHTTP).Output()
		return err == nil && string(out) == natGreeting
	})
	// The master's resolv.conf: `ip netns exec` binds /etc/netns/NS/* over /etc.
	etc := filepath.Join("/etc/netns", e.master.Name)
	must(t, os.MkdirAll(etc, 0o755))
	t.Cleanup(func() {
		os.RemoveAll(etc)
		os.Remove("/etc/netns") // only if no one else uses it
	})
	must(t, os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver 127.0.0.53\nnameserver "+natDNS+"\n"), 0o644))
	return e
}

func (e *natEnv) path(name string) string { return filepath.Join(e.dir, name) }

// startMaster runs `beo master` in the master namespace on config text.
func (e *natEnv) startMaster(t *testing.T, text string) *Daemon {
	t.Helper()
	must(t, os.WriteFile(e.path("config"), []byte(text), 0o644))
	d := Start(t, e.master.Command(context.Background(), e.bin, "master", "-config", e.path("config"),
		"-iface", "vs", "-bootdir", e.path("boot"), "-tftproot", e.path("boot"), "-logdir", e.path("log"),
		"-unknown", e.path("unknown_addresses"), "-socket", e.path("bpmaster.sock"), "-keys", e.path("keys"),
		"-listen", "10.97.0.1:0", "-libs", e.path("libraries"), "-names-root", "", "-stats", "", "-status", ""))
	d.WaitLog(t, "bpmaster listening", 10*time.Second)
	d.WaitLog(t, "beoserv listening", 10*time.Second)
	return d
}

// stop ends the master with SIGTERM and waits for it to exit.
func (e *natEnv) stop(t *testing.T, d *Daemon) {
	t.Helper()
	must(t, d.Cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- d.Cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("master exit: %v\n%s", err, d.Log())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("master still running 15 s after SIGTERM\n%s", d.Log())
	}
}

// lease runs udhcpc in the node namespace and configures vc with what it
// got: the address, and a default route via its router option when there
// is one. It returns udhcpc's key=value output.
func (e *natEnv) lease(t *testing.T) map[string]string {
	t.Helper()
	e.node.Run(t, "ip", "-4", "addr", "flush", "dev", "vc")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := e.node.Command(ctx, "busybox", "udhcpc", "-i", "vc", "-n", "-q", "-f", "-t", "8", "-T", "1",
		"-s", e.path("udhcpc.sh")).Output()
	if err != nil {
		t.Fatalf("udhcpc: %v", err)
	}
	kv := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			kv[k] = strings.TrimSpace(v)
		}
	}
	if kv["ip"] != "10.97.0.100" {
		t.Fatalf("udhcpc: got %v, want 10.97.0.100", kv)
	}
	e.node.Run(t, "ip", "addr", "add", kv["ip"]+"/24", "dev", "vc")
	if kv["router"] != "" {
		e.node.Run(t, "ip", "route", "replace", "default", "via", kv["router"])
	}
	return kv
}

// fetch reports whether the node gets the outside server's page.
func (e *natEnv) fetch(t *testing.T) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := e.node.Command(ctx, "curl", "-s", "-m", "3", natHTTP).CombinedOutput()
	return string(out), err == nil && string(out) == natGreeting
}

func (e *natEnv) nftTables(t *testing.T) string { return e.master.Run(t, "nft", "list", "tables") }

func (e *natEnv) ipForward(t *testing.T) string {
	return strings.TrimSpace(e.master.Run(t, "cat", "/proc/sys/net/ipv4/ip_forward"))
}

// TestIPForward: with `ipforward` a node that took its lease from beo
// master reaches an HTTP server beyond the master (router and DNS by
// DHCP, masquerade by the master), an outside host cannot reach the node,
// and the master's nftables table and ip_forward are gone and restored
// once it stops; without `ipforward` nothing is forwarded even when the
// node routes through the master.
func TestIPForward(t *testing.T) {
	e := natSetup(t)

	t.Run("without ipforward", func(t *testing.T) {
		d := e.startMaster(t, natConfigFmt)
		kv := e.lease(t)
		if kv["router"] != "" || kv["dns"] != "" {
			t.Errorf("lease without ipforward: got router %q dns %q, want neither", kv["router"], kv["dns"])
		}
		e.node.Run(t, "ip", "route", "replace", "default", "via", "10.97.0.1")
		if out, ok := e.fetch(t); ok {
			t.Errorf("node reached the outside without ipforward: %q", out)
		}
		if got := e.nftTables(t); strings.Contains(got, "beo") {
			t.Errorf("nft tables without ipforward: %q", got)
		}
		e.stop(t, d)
	})

	t.Run("with ipforward", func(t *testing.T) {
		d := e.startMaster(t, natConfigFmt+"ipforward\n") // forwarding is up before bpmaster listens
		kv := e.lease(t)
		if kv["router"] != "10.97.0.1" || kv["dns"] != natDNS {
			t.Errorf("lease with ipforward: got router %q dns %q, want 10.97.0.1 and %s", kv["router"], kv["dns"], natDNS)
		}
		if out, ok := e.fetch(t); !ok {
			t.Errorf("node did not reach the outside with ipforward: %q", out)
		}
		if got := e.nftTables(t); !strings.Contains(got, "table ip beo-nat") {
			t.Errorf("nft tables while forwarding: %q, want table ip beo-nat", got)
		}
		if got := e.ipForward(t); got != "1" {
			t.Errorf("ip_forward while forwarding: %s, want 1", got)
		}
		// Outbound only: a host that routes the cluster network to the
		// master still cannot reach a node.
		e.outside.Run(t, "ip", "route", "replace", "10.97.0.0/24", "via", "192.0.2.1")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := e.outside.Command(ctx, "busybox", "ping", "-c", "1", "-W", "2", "10.97.0.100").CombinedOutput()
		cancel()
		if err == nil {
			t.Errorf("outside host reached the node:\n%s", out)
		}
		e.outside.Run(t, "ip", "route", "del", "10.97.0.0/24")

		e.stop(t, d)
		if got := e.nftTables(t); strings.Contains(got, "beo") {
			t.Errorf("nft tables after the master stopped: %q, want no beo table", got)
		}
		if got := e.ipForward(t); got != "0" {
			t.Errorf("ip_forward after the master stopped: %s, want 0 as before", got)
		}
		if out, ok := e.fetch(t); ok {
			t.Errorf("node still reaches the outside after the master stopped: %q", out)
		}
	})

	t.Run("after a crash", func(t *testing.T) {
		d := e.startMaster(t, natConfigFmt+"ipforward\n")
		must(t, d.Cmd.Process.Kill())
		d.Cmd.Wait()
		if got := e.nftTables(t); !strings.Contains(got, "table ip beo-nat") {
			t.Fatalf("nft tables after SIGKILL: %q, want the table left behind", got)
		}
		d = e.startMaster(t, natConfigFmt+"ipforward\n")
		if !strings.Contains(d.Log(), "removing a stale nftables table") {
			t.Errorf("restarted master did not say it removed the stale table:\n%s", d.Log())
		}
		e.lease(t)
		if out, ok := e.fetch(t); !ok {
			t.Errorf("node did not reach the outside after the restart: %q", out)
		}
		e.stop(t, d)
		if got := e.nftTables(t); strings.Contains(got, "beo") {
			t.Errorf("nft tables after the master stopped: %q, want no beo table", got)
		}
		if got := e.ipForward(t); got != "0" {
			t.Errorf("ip_forward after the master stopped: %s, want 0 as before the crash", got)
		}
	})
}
