package boot

import (
	"bytes"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/pkg/bootparam"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

const baseConfig = `interface beo0
nodes 4
iprange 10.99.0.100 10.99.0.103
hostrange 10.99.0.200 10.99.0.209
nodename n%N
server http 8080
node 0 52:54:00:00:00:01
node 1 pxe+local pxe 52:54:00:00:00:02
node 2 local local 52:54:00:00:00:03
ignore 52:54:00:00:00:99
host 52:54:00:00:00:aa 10.99.0.205 switch
`

var (
	mac0    = mustMAC("52:54:00:00:00:01")
	mac1    = mustMAC("52:54:00:00:00:02")
	ignored = mustMAC("52:54:00:00:00:99")
	hostMAC = mustMAC("52:54:00:00:00:aa")
	newMAC  = mustMAC("52:54:00:00:00:77")
	server  = netip.MustParsePrefix("10.99.0.1/24")
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// testServer makes a Server on a temp dir holding config text, a boot dir
// with kernel and initrd, and a TFTP root with undionly.kpxe.
func testServer(t testing.TB, text string) (*Server, string) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"boot", "tftp", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"config": text, "boot/kernel": "KERNEL", "boot/initrd": "INITRD",
		"boot/rootfs.cpio": "ROOTFS", "tftp/undionly.kpxe": "IPXE", "secret": "SECRET",
		"resolv.conf": testResolvConf,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../secret", filepath.Join(dir, "boot", "escape")); err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{
		Iface: "beo0", Addr: server, Config: filepath.Join(dir, "config"),
		BootDir: filepath.Join(dir, "boot"), TFTPRoot: filepath.Join(dir, "tftp"),
		LogDir: filepath.Join(dir, "log"), UnknownFile: filepath.Join(dir, "unknown_addresses"),
		ResolvConf: filepath.Join(dir, "resolv.conf"),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, dir
}

type reqOpt func(*dhcpv4.DHCPv4)

func pxe(arch iana.Arch) reqOpt {
	return func(d *dhcpv4.DHCPv4) {
		d.UpdateOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001"))
		d.UpdateOption(dhcpv4.OptClientArch(arch))
	}
}

func ipxe(d *dhcpv4.DHCPv4) {
	pxe(iana.INTEL_X86PC)(d)
	d.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionUserClassInformation, []byte("iPXE")))
}

func request(ip string) reqOpt {
	return func(d *dhcpv4.DHCPv4) {
		d.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
		d.UpdateOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(ip)))
		d.UpdateOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.99.0.1")))
	}
}

func packet(t *testing.T, hw net.HardwareAddr, opts ...reqOpt) *dhcpv4.DHCPv4 {
	t.Helper()
	d, err := dhcpv4.NewDiscovery(hw)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(d)
	}
	// What the server sees went through the wire format.
	d, err = dhcpv4.FromBytes(d.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAnswer(t *testing.T) {
	tests := []struct {
		name     string
		hw       net.HardwareAddr
		opts     []reqOpt
		wantType dhcpv4.MessageType // 0: no answer
		wantIP   string
		wantFile string
		wantDst  string
	}{
		{"plain discover", mac0, nil, dhcpv4.MessageTypeOffer, "10.99.0.100", "", "255.255.255.255:68"},
		{"bios pxe", mac0, []reqOpt{pxe(iana.INTEL_X86PC)}, dhcpv4.MessageTypeOffer, "10.99.0.100", "undionly.kpxe", "255.255.255.255:68"},
		{"efi pxe", mac1, []reqOpt{pxe(iana.EFI_X86_64)}, dhcpv4.MessageTypeOffer, "10.99.0.101", "snponly.efi", "255.255.255.255:68"},
		{"ipxe", mac0, []reqOpt{ipxe}, dhcpv4.MessageTypeOffer, "10.99.0.100", "http://10.99.0.1:8080/ipxe/52-54-00-00-00-01", "255.255.255.255:68"},
		{"ipxe rfc3004", mac0, []reqOpt{func(d *dhcpv4.DHCPv4) { d.UpdateOption(dhcpv4.OptRFC3004UserClass([]string{"iPXE"})) }},
			dhcpv4.MessageTypeOffer, "10.99.0.100", "http://10.99.0.1:8080/ipxe/52-54-00-00-00-01", "255.255.255.255:68"},
		{"request ours", mac0, []reqOpt{request("10.99.0.100")}, dhcpv4.MessageTypeAck, "10.99.0.100", "", "255.255.255.255:68"},
		{"request other address", mac0, []reqOpt{request("10.99.0.101")}, dhcpv4.MessageTypeNak, "0.0.0.0", "", "255.255.255.255:68"},
		{"request other server", mac0, []reqOpt{request("10.99.0.100"), func(d *dhcpv4.DHCPv4) {
			d.UpdateOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.99.0.2")))
		}}, 0, "", "", ""},
		{"renew unicast", mac0, []reqOpt{func(d *dhcpv4.DHCPv4) {
			d.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
			d.ClientIPAddr = net.ParseIP("10.99.0.100")
		}}, dhcpv4.MessageTypeAck, "10.99.0.100", "", "10.99.0.100:68"},
		{"relayed", mac0, []reqOpt{func(d *dhcpv4.DHCPv4) { d.GatewayIPAddr = net.ParseIP("10.98.0.1") }},
			dhcpv4.MessageTypeOffer, "10.99.0.100", "", "10.98.0.1:67"},
		{"ignored", ignored, []reqOpt{pxe(iana.INTEL_X86PC)}, 0, "", "", ""},
		{"host device", hostMAC, []reqOpt{pxe(iana.INTEL_X86PC)}, dhcpv4.MessageTypeOffer, "10.99.0.205", "", "255.255.255.255:68"},
		{"release", mac0, []reqOpt{func(d *dhcpv4.DHCPv4) { d.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRelease)) }}, 0, "", "", ""},
		{"reply opcode", mac0, []reqOpt{func(d *dhcpv4.DHCPv4) { d.OpCode = dhcpv4.OpcodeBootReply }}, 0, "", "", ""},
		{"no message type", mac0, []reqOpt{func(d *dhcpv4.DHCPv4) { d.Options.Del(dhcpv4.OptionDHCPMessageType) }}, 0, "", "", ""},
	}
	s, _ := testServer(t, baseConfig)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, dst := s.Answer(packet(t, tt.hw, tt.opts...))
			if tt.wantType == 0 {
				if resp != nil {
					t.Fatalf("got %s, want no answer", resp.Summary())
				}
				return
			}
			if resp == nil {
				t.Fatalf("got no answer, want %s", tt.wantType)
			}
			if got := resp.MessageType(); got != tt.wantType {
				t.Errorf("type: got %s, want %s", got, tt.wantType)
			}
			if got := resp.YourIPAddr.String(); got != tt.wantIP {
				t.Errorf("yiaddr: got %s, want %s", got, tt.wantIP)
			}
			if got := resp.BootFileName; got != tt.wantFile {
				t.Errorf("file: got %q, want %q", got, tt.wantFile)
			}
			if got := dst.String(); got != tt.wantDst {
				t.Errorf("destination: got %s, want %s", got, tt.wantDst)
			}
			if !bytes.Equal(resp.ClientHWAddr, tt.hw) {
				t.Errorf("chaddr: got %s, want %s", resp.ClientHWAddr, tt.hw)
			}
			if tt.wantType == dhcpv4.MessageTypeNak {
				return
			}
			if got := resp.ServerIdentifier().String(); got != "10.99.0.1" {
				t.Errorf("server id: got %s, want 10.99.0.1", got)
			}
			if got := resp.Options.Get(optIPXEEncap); !bytes.Equal(got, []byte{176, 1, 1}) {
				t.Errorf("option 175: got %v, want [176 1 1]", got)
			}
			if got := net.IP(resp.SubnetMask()).String(); got != "255.255.255.0" {
				t.Errorf("mask: got %s, want 255.255.255.0", got)
			}
		})
	}
}

func TestAnswerLogsDialog(t *testing.T) {
	s, dir := testServer(t, baseConfig)
	s.Answer(packet(t, mac0, ipxe))
	data, err := os.ReadFile(filepath.Join(dir, "log", "node.0"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DISCOVER 52:54:00:00:00:01", "from ipxe", "OFFER 10.99.0.100"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("node.0 log %q lacks %q", data, want)
		}
	}
}

func TestNewMAC(t *testing.T) {
	tests := []struct {
		name        string
		extra       string
		wantIP      string // "" = no answer
		wantLine    string // appended to the config
		wantUnknown bool
	}{
		{"append", "", "10.99.0.103", "node 3 52:54:00:00:00:77\n", false},
		{"insert", "nodeassign insert\n", "10.99.0.103", "node 3 52:54:00:00:00:77\n", false},
		{"off", "nodeassign off\n", "", "", true},
		{"full", "node 3 52:54:00:00:00:04\n", "", "ignore 52:54:00:00:00:77\n", false},
		{"full insert", "nodeassign insert\nnode 3 52:54:00:00:00:04\n", "", "ignore 52:54:00:00:00:77\n", false},
		{"full and off", "nodeassign off\nnode 3 52:54:00:00:00:04\n", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := testServer(t, baseConfig+tt.extra)
			var changed []*config.Config
			s.o.OnConfig = func(c *config.Config) { changed = append(changed, c) }
			resp, _ := s.Answer(packet(t, newMAC, pxe(iana.INTEL_X86PC)))
			got := ""
			if resp != nil {
				got = resp.YourIPAddr.String()
			}
			if got != tt.wantIP {
				t.Errorf("address: got %q, want %q", got, tt.wantIP)
			}
			data, err := os.ReadFile(filepath.Join(dir, "config"))
			if err != nil {
				t.Fatal(err)
			}
			if want := baseConfig + tt.extra + tt.wantLine; string(data) != want {
				t.Errorf("config file:\n%s\nwant:\n%s", data, want)
			}
			if tt.wantLine != "" && len(changed) != 1 {
				t.Errorf("OnConfig calls: got %d, want 1", len(changed))
			}
			unk, _ := os.ReadFile(filepath.Join(dir, "unknown_addresses"))
			if got, want := string(unk), map[bool]string{true: "52:54:00:00:00:77\n"}[tt.wantUnknown]; got != want {
				t.Errorf("unknown_addresses: got %q, want %q", got, want)
			}
			// Asking again changes nothing and gives the same answer.
			resp2, _ := s.Answer(packet(t, newMAC, ipxe))
			if (resp2 == nil) != (resp == nil) || resp2 != nil && !resp2.YourIPAddr.Equal(resp.YourIPAddr) {
				t.Errorf("second answer differs: %v vs %v", resp2, resp)
			}
			data2, _ := os.ReadFile(filepath.Join(dir, "config"))
			unk2, _ := os.ReadFile(filepath.Join(dir, "unknown_addresses"))
			if !bytes.Equal(data, data2) || !bytes.Equal(unk, unk2) {
				t.Errorf("second request changed the files")
			}
		})
	}
}

// TestMadeUpMACs: a flood of DHCP requests with made-up MACs gets no
// answer and stops growing the files once each list holds maxRecorded
// MACs — the config's ignore lines on a full cluster, the
// unknown-addresses file under nodeassign off — while a node of the
// config is still answered.
func TestMadeUpMACs(t *testing.T) {
	for _, extra := range []string{"node 3 52:54:00:00:00:04\n", "nodeassign off\n"} {
		t.Run(strings.TrimSpace(extra), func(t *testing.T) {
			s, dir := testServer(t, baseConfig+extra)
			for i := range maxRecorded + 20 {
				m := net.HardwareAddr{0x02, 0xbe, 0x0f, 0, byte(i >> 8), byte(i)}
				if resp, _ := s.Answer(packet(t, m)); resp != nil {
					t.Fatalf("made-up MAC %s answered %s", m, resp.YourIPAddr)
				}
			}
			cfg, _ := os.ReadFile(filepath.Join(dir, "config"))
			unk, _ := os.ReadFile(filepath.Join(dir, "unknown_addresses"))
			ignores, unknowns := strings.Count(string(cfg), "\nignore "), strings.Count(string(unk), "\n")
			if full := map[bool]int{true: unknowns, false: ignores}[strings.HasPrefix(extra, "nodeassign off")]; full != maxRecorded || ignores > maxRecorded || unknowns > maxRecorded {
				t.Errorf("%d ignore lines in the config, %d unknown addresses: want the list that grows at its cap, %d", ignores, unknowns, maxRecorded)
			}
			if resp, _ := s.Answer(packet(t, mustMAC("52:54:00:00:00:01"))); resp == nil || resp.YourIPAddr.String() != "10.99.0.100" {
				t.Errorf("node 0 after the flood: %v, want 10.99.0.100", resp)
			}
		})
	}
}

func TestNewMACAfterHandEdit(t *testing.T) {
	s, dir := testServer(t, baseConfig)
	path := filepath.Join(dir, "config")
	// An admin adds a line without telling the server.
	edited := baseConfig + "# added by hand\nnode 3 52:54:00:00:00:05\n"
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, _ := s.Answer(packet(t, newMAC))
	if resp != nil {
		t.Errorf("got %s, want no answer (the hand-added node 3 fills the cluster)", resp.YourIPAddr)
	}
	data, _ := os.ReadFile(path)
	if want := edited + "ignore 52:54:00:00:00:77\n"; string(data) != want {
		t.Errorf("config file:\n%s\nwant the admin's edit kept and the MAC ignored:\n%s", data, want)
	}
}

func TestScript(t *testing.T) {
	const url = "http://10.99.0.1:8080"
	params := bootparam.Params{Master: server.Addr(), BProc: 933, HTTP: 8080, Rootfs: "/boot/rootfs.cpio",
		Stats: 5545, Kickback: 3045, RootfsSize: "50%"}.String()
	tests := []struct {
		name  string
		extra string
		node  int
		want  string
	}{
		{"defaults", "", 0, "#!ipxe\nkernel " + url + "/boot/kernel " + DefaultCmdline + " " + params +
			"\ninitrd " + url + "/boot/initrd\nboot\n"},
		{"local", "", 2, "#!ipxe\necho beo: node 2 boots from its next boot device\nexit\n"},
		{"per node", "kernelimage 0 /srv/vmlinuz\ninitrdimage 0-1 none\nkernelcommandline 0 quiet\n", 0,
			"#!ipxe\nkernel " + url + "/image/srv/vmlinuz quiet " + params + "\nboot\n"},
		{"class", "class big kernelcommandline mem=64G\nnode 3 big 52:54:00:00:00:04\n", 3,
			"#!ipxe\nkernel " + url + "/boot/kernel mem=64G " + params +
				"\ninitrd " + url + "/boot/initrd\nboot\n"},
		{"cmdline none", "kernelcommandline none\n", 0, "#!ipxe\nkernel " + url + "/boot/kernel" +
			"\ninitrd " + url + "/boot/initrd\nboot\n"},
		{"class cmdline none", "class memtest kernelimage /srv/memtest.bin\nclass memtest initrdimage none\n" +
			"class memtest kernelcommandline none\nnode 3 memtest 52:54:00:00:00:04\nserver syslog 5514\n", 3,
			"#!ipxe\nkernel " + url + "/image/srv/memtest.bin\nboot\n"},
		{"node cmdline none", "kernelcommandline quiet\nkernelcommandline 0 none\n", 0, "#!ipxe\nkernel " + url + "/boot/kernel" +
			"\ninitrd " + url + "/boot/initrd\nboot\n"},
		{"kernel none", "kernelimage none\n", 0, "#!ipxe\necho beo: node 0 boots from its next boot device\nexit\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := testServer(t, baseConfig+tt.extra)
			spec, ok := s.Config().Node(tt.node)
			if !ok {
				t.Fatalf("node %d not configured", tt.node)
			}
			got, _ := s.Script(s.Config(), spec)
			if got != tt.want {
				t.Errorf("script:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestCmdlineRoundTrip(t *testing.T) {
	s, _ := testServer(t, baseConfig+"server bproc 9933\nserver syslog 5514\n")
	spec, _ := s.Config().Node(0)
	p, err := bootparam.Parse(s.Cmdline(s.Config(), spec))
	if err != nil {
		t.Fatal(err)
	}
	want := bootparam.Defaults()
	want.Master, want.BProc, want.HTTP, want.SyslogServer = server.Addr(), 9933, 8080, "10.99.0.1:5514"
	if p != want {
		t.Errorf("parsed: got %+v, want %+v", p, want)
	}
	// The modules a node's fstab needs: on its line, and only on its.
	s.o.Modules = func(n int) []string {
		if n == 1 {
			return []string{"nfsv4", "ext4"}
		}
		return nil
	}
	for n, want := range map[int]string{0: "", 1: "nfsv4,ext4"} {
		spec, _ := s.Config().Node(n)
		cl := s.Cmdline(s.Config(), spec)
		p, err := bootparam.Parse(cl)
		if err != nil || p.Modules != want {
			t.Errorf("node %d: %q: modules %q, %v; want %q", n, cl, p.Modules, err, want)
		}
	}
}

func TestHTTP(t *testing.T) {
	s, dir := testServer(t, baseConfig)
	// A configured image lives outside every root: the config names it.
	img := filepath.Join(dir, "vmlinuz")
	os.WriteFile(img, []byte("CONFIGURED"), 0o644)
	os.WriteFile(filepath.Join(dir, "config"), []byte(baseConfig+"kernelimage 0 "+img+"\n"), 0o644)
	if err := reload(s); err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	tests := []struct {
		path     string
		wantCode int
		wantBody string
	}{
		{"/boot/kernel", 200, "KERNEL"},
		{"/boot/rootfs.cpio", 200, "ROOTFS"},
		{"/boot/escape", 403, ""},
		{"/boot/..%5csecret", 400, ""},
		{"/boot/a%5c..%5c..%5csecret", 400, ""},
		{"/boot/%2e%2e/secret", 400, ""},
		{"/boot/missing", 404, ""},
		{"/image" + img, 200, "CONFIGURED"},
		{"/image/etc/passwd", 404, ""},
		{"/ipxe/not-a-mac", 400, ""},
		{"/ipxe/52-54-00-00-00-99", 404, ""},
		{"/ipxe/52:54:00:00:00:01", 200, "kernel http://10.99.0.1:8080/image" + img + " "},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			if rec.Code != tt.wantCode {
				t.Errorf("code: got %d, want %d (%s)", rec.Code, tt.wantCode, rec.Body)
			}
			if tt.wantBody != "" && !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body: got %q, want it to contain %q", rec.Body, tt.wantBody)
			}
			if strings.Contains(rec.Body.String(), "SECRET") {
				t.Errorf("served the file outside the root")
			}
		})
	}
}

func TestPXELocalRewrite(t *testing.T) {
	s, dir := testServer(t, baseConfig)
	h := s.Handler()
	get := func(from string) string {
		req := httptest.NewRequest("GET", "/ipxe/52-54-00-00-00-02", nil)
		req.RemoteAddr = from
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Body.String()
	}
	// Another host's request for node 1's script changes nothing.
	if got := get("10.99.0.100:4000"); !strings.Contains(got, "\nboot\n") {
		t.Fatalf("script for another host: got %q, want a boot", got)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "config")); string(data) != baseConfig {
		t.Errorf("node 0 asking for node 1's script rewrote the config:\n%s", data)
	}
	if got := get("10.99.0.101:4000"); !strings.Contains(got, "\nboot\n") {
		t.Fatalf("first script: got %q, want a boot", got)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "config"))
	want := strings.Replace(baseConfig, "node 1 pxe+local pxe", "node 1 pxe+local local", 1)
	if string(data) != want {
		t.Errorf("config after pxe:\n%s\nwant:\n%s", data, want)
	}
	if got := get("10.99.0.101:4001"); !strings.Contains(got, "\nexit\n") {
		t.Errorf("second script: got %q, want exit", got)
	}
}

func TestReloadKeepsConfigOnError(t *testing.T) {
	s, dir := testServer(t, baseConfig)
	before := s.Config()
	os.WriteFile(filepath.Join(dir, "config"), []byte(baseConfig+"iprange 10.99.0.100\n"), 0o644)
	err := reload(s)
	if err == nil || !strings.Contains(err.Error(), "config:") {
		t.Fatalf("Reload: got %v, want an error naming file:line", err)
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, "config")+":12:") {
		t.Errorf("error %q does not name the line (12)", err)
	}
	if s.Config() != before {
		t.Errorf("config changed after a failed reload")
	}
	resp, _ := s.Answer(packet(t, mac0))
	if resp == nil || resp.YourIPAddr.String() != "10.99.0.100" {
		t.Errorf("after failed reload: got %v, want an offer of 10.99.0.100", resp)
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"undionly.kpxe", true},
		{"dir/file", true},
		{"..", false},
		{"../etc/passwd", false},
		{"a/../../b", false},
		{"/etc/passwd", false},
		{"a\\..\\b", false},
		{"a\x00b", false},
		{"", false},
		{"a//b", false},
		{"./a", false},
	}
	for _, tt := range tests {
		_, err := cleanName(tt.name)
		if got := err == nil; got != tt.ok {
			t.Errorf("cleanName(%q): got ok=%v (%v), want %v", tt.name, got, err, tt.ok)
		}
	}
}

func TestOpenIn(t *testing.T) {
	s, _ := testServer(t, baseConfig)
	tests := []struct {
		name string
		ok   bool
	}{
		{"kernel", true},
		{"escape", false}, // symlink out of the root
		{"../secret", false},
		{".", false},
	}
	for _, tt := range tests {
		f, _, err := openIn(s.boot, tt.name)
		if f != nil {
			f.Close()
		}
		if got := err == nil; got != tt.ok {
			t.Errorf("openIn(%q): got ok=%v (%v), want %v", tt.name, got, err, tt.ok)
		}
	}
}

func TestUnknownList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "unknown")
	os.WriteFile(path, []byte("# kept\n52:54:00:00:00:01"), 0o644)
	u := &unknownList{path: path}
	m1, _ := config.ParseMAC("52:54:00:00:00:01")
	m2, _ := config.ParseMAC("52:54:00:00:00:02")
	for _, step := range []struct {
		m       config.MAC
		wantNew bool
	}{{m1, false}, {m2, true}, {m2, false}} {
		got, err := u.Add(step.m)
		if err != nil || got != step.wantNew {
			t.Errorf("Add(%s): got %v, %v; want %v", step.m, got, err, step.wantNew)
		}
	}
	data, _ := os.ReadFile(path)
	if want := "# kept\n52:54:00:00:00:01\n52:54:00:00:00:02\n"; string(data) != want {
		t.Errorf("file: got %q, want %q", data, want)
	}
}

func TestAdvertisement(t *testing.T) {
	got, err := advertisement(mustMAC("52:54:00:12:34:56"))
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{134, 0, 0, 0, // type RA, code, checksum (kernel's)
		0, 0, 0, 0, // hop limit, flags, router lifetime 0
		0, 0, 0, 0, 0, 0, 0, 0, // reachable, retrans
		1, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56} // source link-layer address
	if !bytes.Equal(got, want) {
		t.Errorf("RA: got % x, want % x", got, want)
	}
	rs := []byte{133, 0, 0, 0, 0, 0, 0, 0}
	if !isSolicitation(rs) || isSolicitation(got) || isSolicitation(rs[:3]) {
		t.Errorf("isSolicitation misjudges RS/RA/truncated")
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		opts []reqOpt
		want clientKind
	}{
		{"plain", nil, plainClient},
		{"pxe", []reqOpt{pxe(iana.INTEL_X86PC)}, pxeClient},
		{"ipxe", []reqOpt{ipxe}, ipxeClient},
		{"ipxe 175 only", []reqOpt{func(d *dhcpv4.DHCPv4) { d.UpdateOption(dhcpv4.OptGeneric(optIPXEEncap, []byte{177, 1, 1})) }}, ipxeClient},
		{"other user class", []reqOpt{func(d *dhcpv4.DHCPv4) {
			d.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionUserClassInformation, []byte("gPXE")))
		}}, plainClient},
	}
	for _, tt := range tests {
		if got := classify(packet(t, mac0, tt.opts...)); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

// reload re-reads s's config file and hands it to s, as pkg/head's
// Reloader does for beoserv.
func reload(s *Server) error {
	f, err := config.Open(s.o.Config, s.copt)
	if err != nil {
		return err
	}
	return s.SetFile(f)
}
