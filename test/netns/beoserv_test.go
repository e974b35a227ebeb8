package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

const (
	nodeMAC  = "52:54:00:00:00:01"
	newMAC   = "52:54:00:00:00:02"
	lateMAC  = "52:54:00:00:00:03"
	httpPort = "8080"
)

const serverConfig = `# boot server netns test
interface vs
nodes 3
iprange 10.99.0.100 10.99.0.102
nodename n%N
server http ` + httpPort + `
node 0 pxe+local pxe ` + nodeMAC + `
`

// udhcpcScript prints what udhcpc learned, one key=value per line.
const udhcpcScript = `#!/bin/sh
[ "$1" = bound ] || exit 0
echo "ip=$ip"
echo "subnet=$subnet"
echo "serverid=$serverid"
echo "siaddr=$siaddr"
echo "boot_file=$boot_file"
echo "hostname=$hostname"
echo "lease=$lease"
`

// bootEnv is a running beoserv in namespace srv, linked to namespace cli
// (interface vc) by a veth pair.
type bootEnv struct {
	dir      string
	srv, cli *NS
	beo      *Daemon
}

func startBeoserv(t *testing.T) *bootEnv {
	Require(t, "busybox", "atftp", "curl")
	bin := Beo(t)
	e := &bootEnv{dir: t.TempDir(), srv: Add(t, "beosrv"), cli: Add(t, "beocli")}
	Veth(t, e.srv, "vs", "10.99.0.1/24", e.cli, "vc", nodeMAC)
	for _, d := range []string{"boot", "tftp", "log"} {
		must(t, os.Mkdir(e.path(d), 0o755))
	}
	big := make([]byte, 3<<20+123) // several thousand TFTP blocks, not a multiple of any blksize
	rand.Read(big)
	files := map[string][]byte{
		"config": []byte(serverConfig), "udhcpc.sh": []byte(udhcpcScript), "secret": []byte("SECRET"),
		"boot/kernel": []byte("KERNEL"), "boot/initrd": []byte("INITRD"), "tftp/big.bin": big,
	}
	for name, data := range files {
		must(t, os.WriteFile(e.path(name), data, 0o755))
	}
	if ipxe, err := os.ReadFile("/usr/lib/ipxe/undionly.kpxe"); err == nil {
		must(t, os.WriteFile(e.path("tftp/undionly.kpxe"), ipxe, 0o644))
	}
	must(t, os.Symlink("../secret", e.path("tftp/escape")))
	e.beo = Start(t, e.srv.Command(context.Background(), bin, "beoserv", "-config", e.path("config"),
		"-bootdir", e.path("boot"), "-tftproot", e.path("tftp"), "-logdir", e.path("log"),
		"-unknown", e.path("unknown_addresses")))
	e.beo.WaitLog(t, "beoserv listening", 10*time.Second)
	return e
}

func (e *bootEnv) path(name string) string { return filepath.Join(e.dir, name) }

// udhcpc runs busybox udhcpc once in the client namespace with extra
// options and returns the script's key=value output, or nil if no lease.
func (e *bootEnv) udhcpc(t *testing.T, opts ...string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Eight discovers a second apart: a server that adds the node first
	// answers only once its config rewrite is on disk, and with the QEMU
	// suite writing beside it that fsync has taken over three seconds.
	args := append([]string{"busybox", "udhcpc", "-i", "vc", "-n", "-q", "-f", "-t", "8", "-T", "1", "-s", e.path("udhcpc.sh")}, opts...)
	cmd := e.cli.Command(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Logf("udhcpc %v: %v\n%s", opts, err, stderr.String())
		return nil
	}
	kv := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			kv[k] = v
		}
	}
	return kv
}

func (e *bootEnv) curl(t *testing.T, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := e.cli.Command(ctx, "curl", "-s", "--path-as-is", "-w", "\n%{http_code}",
		"http://10.99.0.1:"+httpPort+path).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", path, err)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	var code int
	fmt.Sscan(s[i+1:], &code)
	return code, s[:i]
}

func (e *bootEnv) config(t *testing.T) string {
	b, err := os.ReadFile(e.path("config"))
	must(t, err)
	return string(b)
}

func (e *bootEnv) hup(t *testing.T) {
	t.Helper()
	must(t, e.beo.Cmd.Process.Signal(syscall.SIGHUP))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestBeoserv(t *testing.T) {
	e := startBeoserv(t)

	t.Run("udhcpc firmware PXE", func(t *testing.T) {
		got := e.udhcpc(t, "-V", "PXEClient:Arch:00000:UNDI:002001")
		want := map[string]string{"ip": "10.99.0.100", "subnet": "255.255.255.0", "serverid": "10.99.0.1",
			"siaddr": "10.99.0.1", "boot_file": "undionly.kpxe", "hostname": "n0", "lease": "604800"}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: got %q, want %q (all: %v)", k, got[k], v, got)
			}
		}
	})

	t.Run("udhcpc iPXE", func(t *testing.T) {
		got := e.udhcpc(t, "-x", "77:69505845") // option 77 "iPXE"
		if want := "http://10.99.0.1:" + httpPort + "/ipxe/52-54-00-00-00-01"; got["boot_file"] != want || got["ip"] != "10.99.0.100" {
			t.Errorf("got ip %q file %q, want 10.99.0.100 %q", got["ip"], got["boot_file"], want)
		}
	})

	t.Run("second server refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := e.srv.Command(ctx, Beo(t), "beoserv", "-config", e.path("config"), "-bootdir", e.path("boot"),
			"-tftp-port", "-1", "-http", "-1", "-logdir", "-", "-no-ra").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "another DHCP server") {
			t.Errorf("second beoserv: got %v\n%s\nwant a refusal naming another DHCP server", err, out)
		}
	})

	e.cli.Run(t, "ip", "addr", "add", "10.99.0.100/24", "dev", "vc")

	t.Run("atftp blksize", func(t *testing.T) {
		for _, name := range []string{"big.bin", "undionly.kpxe"} {
			want, err := os.ReadFile(e.path("tftp/" + name))
			if err != nil {
				continue // no ipxe package
			}
			out := e.path("got-" + name)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			msg, err := e.cli.Command(ctx, "atftp", "--trace", "--option", "blksize 1468", "--option", "tsize 0",
				"-g", "-r", name, "-l", out, "10.99.0.1", "69").CombinedOutput()
			cancel()
			if err != nil {
				t.Fatalf("atftp %s: %v\n%s", name, err, msg)
			}
			if oack := fmt.Sprintf("received OACK <tsize: %d, blksize: 1468", len(want)); !strings.Contains(string(msg), oack) {
				t.Errorf("atftp %s: no %q in its trace:\n%.400s", name, oack, msg)
			}
			if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
				t.Errorf("atftp %s: got %d bytes, want the %d served", name, len(got), len(want))
			}
		}
	})

	t.Run("atftp traversal", func(t *testing.T) {
		for _, name := range []string{"../secret", "/etc/passwd", "escape", "..\\secret", "missing"} {
			out := e.path("trav")
			os.Remove(out)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			msg, err := e.cli.Command(ctx, "atftp", "-g", "-r", name, "-l", out, "10.99.0.1", "69").CombinedOutput()
			cancel()
			if got, _ := os.ReadFile(out); err == nil || len(got) > 0 {
				t.Errorf("atftp %q: got %v, %q; want an error and nothing\n%s", name, err, got, msg)
			}
		}
	})

	t.Run("curl files and traversal", func(t *testing.T) {
		tests := []struct {
			path string
			code int
			body string
		}{
			{"/boot/kernel", 200, "KERNEL"},
			{"/boot/initrd", 200, "INITRD"},
			{"/boot/../secret", 307, ""}, // the mux redirects to the clean /secret
			{"/boot/..%2fsecret", 400, ""},
			{"/boot/..%5csecret", 400, ""},
			{"/image/etc/passwd", 404, ""},
			{"/ipxe/52-54-00-00-00-09", 404, ""},
		}
		for _, tt := range tests {
			code, body := e.curl(t, tt.path)
			if code != tt.code || tt.body != "" && body != tt.body || strings.Contains(body, "SECRET") {
				t.Errorf("GET %s: got %d %q, want %d %q", tt.path, code, body, tt.code, tt.body)
			}
		}
	})

	t.Run("pxe+local", func(t *testing.T) {
		code, script := e.curl(t, "/ipxe/52-54-00-00-00-01")
		for _, want := range []string{"#!ipxe\n", "kernel http://10.99.0.1:" + httpPort + "/boot/kernel ",
			"beo.master=10.99.0.1", "beo.http=" + httpPort, "initrd http://10.99.0.1:" + httpPort + "/boot/initrd\n", "\nboot\n"} {
			if code != 200 || !strings.Contains(script, want) {
				t.Errorf("first script: got %d %q, want it to contain %q", code, script, want)
			}
		}
		if got := e.config(t); !strings.Contains(got, "node 0 pxe+local local "+nodeMAC+"\n") {
			t.Errorf("config after the pxe step:\n%s\nwant node 0 at stage local", got)
		}
		if _, script := e.curl(t, "/ipxe/52-54-00-00-00-01"); !strings.Contains(script, "\nexit\n") || strings.Contains(script, "kernel") {
			t.Errorf("second script: got %q, want boot next (exit)", script)
		}
		log, _ := os.ReadFile(e.path("log/node.0"))
		for _, want := range []string{"DISCOVER " + nodeMAC, "ACK 10.99.0.100", "GET /ipxe/52-54-00-00-00-01", "boot-stage rewritten to local"} {
			if !strings.Contains(string(log), want) {
				t.Errorf("node.0 log lacks %q:\n%s", want, log)
			}
		}
	})

	e.cli.Run(t, "ip", "-4", "addr", "flush", "dev", "vc")

	t.Run("unlisted MAC becomes a node", func(t *testing.T) {
		e.cli.Run(t, "ip", "link", "set", "vc", "address", newMAC)
		got := e.udhcpc(t)
		if got["ip"] != "10.99.0.101" || got["hostname"] != "n1" {
			t.Errorf("new MAC: got %v, want 10.99.0.101 n1", got)
		}
		if cfg := e.config(t); !strings.HasSuffix(cfg, "\nnode 1 "+newMAC+"\n") {
			t.Errorf("config:\n%s\nwant a node 1 line for %s at the end", cfg, newMAC)
		}
	})

	t.Run("reload with an error keeps the config", func(t *testing.T) {
		good := e.config(t)
		must(t, os.WriteFile(e.path("config"), []byte(good+"iprange 10.99.0.100\n"), 0o644))
		e.hup(t)
		line := strings.Count(good, "\n") + 1
		e.beo.WaitLog(t, fmt.Sprintf("%s:%d:", e.path("config"), line), 10*time.Second)
		e.cli.Run(t, "ip", "link", "set", "vc", "address", nodeMAC)
		if got := e.udhcpc(t); got["ip"] != "10.99.0.100" {
			t.Errorf("after a bad reload: got %v, want 10.99.0.100", got)
		}
		must(t, os.WriteFile(e.path("config"), []byte(good), 0o644))
	})

	t.Run("unknown MAC with nodeassign off", func(t *testing.T) {
		must(t, os.WriteFile(e.path("config"), []byte(e.config(t)+"nodeassign off\n"), 0o644))
		e.hup(t)
		e.beo.WaitLog(t, "config reloaded", 10*time.Second)
		e.cli.Run(t, "ip", "link", "set", "vc", "address", lateMAC)
		if got := e.udhcpc(t); got != nil {
			t.Errorf("unknown MAC got a lease: %v", got)
		}
		unk, _ := os.ReadFile(e.path("unknown_addresses"))
		if string(unk) != lateMAC+"\n" {
			t.Errorf("unknown_addresses: got %q, want %q", unk, lateMAC+"\n")
		}
		if strings.Contains(e.config(t), lateMAC) {
			t.Errorf("unknown MAC was added to the config")
		}
	})

	t.Run("router solicitation answered", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := e.cli.Command(ctx, os.Args[0], "-test.run=^TestSolicitHelper$")
		cmd.Env = append(os.Environ(), "BEO_SOLICIT_IFACE=vc")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "RA lifetime=0") {
			t.Errorf("router solicitation: %v\n%s", err, out)
		}
	})
}

// TestSolicitHelper is run by TestBeoserv inside the client namespace: it
// sends router solicitations on $BEO_SOLICIT_IFACE until a router
// advertisement arrives (or 10 s pass) and prints its router lifetime.
func TestSolicitHelper(t *testing.T) {
	iface := os.Getenv("BEO_SOLICIT_IFACE")
	if iface == "" {
		t.Skip("helper process for TestBeoserv")
	}
	ifi, err := net.InterfaceByName(iface)
	must(t, err)
	c, err := icmp.ListenPacket("ip6:ipv6-icmp", "::")
	must(t, err)
	defer c.Close()
	p := c.IPv6PacketConn()
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterAdvertisement)
	must(t, p.SetICMPFilter(&f))
	must(t, p.SetMulticastHopLimit(255))
	must(t, p.SetMulticastInterface(ifi))
	rs, err := (&icmp.Message{Type: ipv6.ICMPTypeRouterSolicitation, Body: &icmp.RawBody{Data: make([]byte, 4)}}).Marshal(nil)
	must(t, err)
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 1500)
	for time.Now().Before(deadline) {
		if _, err := p.WriteTo(rs, nil, &net.IPAddr{IP: net.ParseIP("ff02::2"), Zone: iface}); err != nil {
			t.Logf("send RS: %v", err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, _, src, err := p.ReadFrom(buf)
		if err != nil {
			continue
		}
		m, err := icmp.ParseMessage(58, buf[:n])
		if err != nil || m.Type != ipv6.ICMPTypeRouterAdvertisement {
			continue
		}
		body := m.Body.(*icmp.RawBody).Data
		if len(body) >= 4 {
			fmt.Printf("RA lifetime=%d from %v\n", int(body[2])<<8|int(body[3]), src)
			return
		}
	}
	t.Fatal("no router advertisement within 10 s")
}

// TestMasterBoot runs `beo master` with the boot server on the cluster
// interface: DHCP and HTTP answer, and a node beoserv adds to the config
// is known to bpmaster at once (bpstat lists it) without a reload.
func TestMasterBoot(t *testing.T) {
	Require(t, "busybox", "curl")
	bin := Beo(t)
	e := &bootEnv{dir: t.TempDir(), srv: Add(t, "beomst"), cli: Add(t, "beomcl")}
	Veth(t, e.srv, "vs", "10.99.0.1/24", e.cli, "vc", newMAC)
	must(t, os.Mkdir(e.path("boot"), 0o755))
	for name, data := range map[string]string{"config": serverConfig, "udhcpc.sh": udhcpcScript, "boot/kernel": "KERNEL"} {
		must(t, os.WriteFile(e.path(name), []byte(data), 0o755))
	}
	sock := e.path("bpmaster.sock")
	e.beo = Start(t, e.srv.Command(context.Background(), bin, "master", "-config", e.path("config"),
		"-iface", "vs", "-bootdir", e.path("boot"), "-tftproot", e.path("boot"), "-logdir", e.path("log"),
		"-unknown", e.path("unknown_addresses"), "-socket", sock, "-keys", e.path("keys"),
		"-listen", "10.99.0.1:0", "-libs", e.path("libraries")))
	e.beo.WaitLog(t, "beoserv listening", 10*time.Second)
	e.beo.WaitLog(t, "bpmaster listening", 10*time.Second)

	bpstat := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := e.srv.Command(ctx, bin, "bpstat", "-json")
		cmd.Env = append(os.Environ(), "BEO_SOCKET="+sock)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bpstat: %v\n%s", err, out)
		}
		return string(out)
	}
	if got := e.udhcpc(t, "-x", "77:69505845"); got["ip"] != "10.99.0.101" ||
		got["boot_file"] != "http://10.99.0.1:"+httpPort+"/ipxe/52-54-00-00-00-02" {
		t.Fatalf("udhcpc via beo master: got %v, want 10.99.0.101 and the script URL", got)
	}
	if cfg := e.config(t); !strings.HasSuffix(cfg, "node 1 "+newMAC+"\n") {
		t.Errorf("config:\n%s\nwant node 1 appended", cfg)
	}
	if out := bpstat(); !strings.Contains(out, newMAC) {
		t.Errorf("bpstat -json after the new node:\n%s\nwant it to list %s", out, newMAC)
	}
	e.cli.Run(t, "ip", "addr", "add", "10.99.0.101/24", "dev", "vc")
	if code, body := e.curl(t, "/ipxe/52-54-00-00-00-02"); code != 200 || !strings.Contains(body, "beo.master=10.99.0.1") {
		t.Errorf("script via beo master: got %d %q", code, body)
	}
	good := e.config(t)
	must(t, os.WriteFile(e.path("config"), []byte(good+"nodes x\n"), 0o644))
	e.hup(t)
	e.beo.WaitLog(t, fmt.Sprintf("%s:%d:", e.path("config"), strings.Count(good, "\n")+1), 10*time.Second)
	if got := e.udhcpc(t); got["ip"] != "10.99.0.101" {
		t.Errorf("after a refused reload: got %v, want 10.99.0.101", got)
	}
}
