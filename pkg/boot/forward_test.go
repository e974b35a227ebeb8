package boot

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/beo-cluster/beo/pkg/config"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// testResolvConf is the master's resolv.conf in testServer's directory.
const testResolvConf = `# the master's
search example.org
nameserver 127.0.0.53
nameserver 192.0.2.53
nameserver 2001:db8::53
nameserver ::ffff:198.51.100.7
options edns0
`

// TestForwardOptions: under ipforward every answer names this server as
// router and the master's non-loopback IPv4 DNS servers; without it,
// neither.
func TestForwardOptions(t *testing.T) {
	tests := []struct {
		name       string
		extra      string
		wantRouter string // "" = no option 3
		wantDNS    string // "" = no option 6
	}{
		{"off", "", "", ""},
		{"ipforward no", "ipforward no\n", "", ""},
		{"ipforward", "ipforward\n", "[10.99.0.1]", "[192.0.2.53 198.51.100.7]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := testServer(t, baseConfig+tt.extra)
			for _, kind := range []struct {
				name string
				hw   net.HardwareAddr
				opts []reqOpt
			}{
				{"node init", mac0, nil},
				{"node pxe", mac0, []reqOpt{pxe(iana.INTEL_X86PC)}},
				{"node ack", mac0, []reqOpt{request("10.99.0.100")}},
				{"host device", hostMAC, nil},
			} {
				resp, _ := s.Answer(packet(t, kind.hw, kind.opts...))
				if resp == nil {
					t.Fatalf("%s: no answer", kind.name)
				}
				if got := optString(resp, dhcpv4.OptionRouter, fmt.Sprint(resp.Router())); got != tt.wantRouter {
					t.Errorf("%s: router: got %q, want %q", kind.name, got, tt.wantRouter)
				}
				if got := optString(resp, dhcpv4.OptionDomainNameServer, fmt.Sprint(resp.DNS())); got != tt.wantDNS {
					t.Errorf("%s: DNS: got %q, want %q", kind.name, got, tt.wantDNS)
				}
			}
		})
	}
}

func optString(d *dhcpv4.DHCPv4, code dhcpv4.OptionCode, s string) string {
	if !d.Options.Has(code) {
		return ""
	}
	return s
}

// TestForwardNoDNS: with only loopback resolvers the answers name the
// router and no DNS server.
func TestForwardNoDNS(t *testing.T) {
	s, dir := testServer(t, baseConfig)
	must(t, os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 127.0.0.53\nnameserver ::1\n"), 0o644))
	f, err := config.NewFile(filepath.Join(dir, "config"), []byte(baseConfig+"ipforward\n"), s.copt)
	must(t, err)
	// ipforward is read at start: a reload that turns it on changes nothing.
	must(t, s.SetFile(f))
	if resp, _ := s.Answer(packet(t, mac0)); resp.Options.Has(dhcpv4.OptionRouter) {
		t.Errorf("ipforward turned on by a reload: got router %v, want none until a restart", resp.Router())
	}
	must(t, os.WriteFile(filepath.Join(dir, "config"), []byte(baseConfig+"ipforward\n"), 0o644))
	s, err = New(s.o)
	must(t, err)
	resp, _ := s.Answer(packet(t, mac0))
	if resp == nil || fmt.Sprint(resp.Router()) != "[10.99.0.1]" || resp.Options.Has(dhcpv4.OptionDomainNameServer) {
		t.Errorf("got router %v, DNS option %v; want 10.99.0.1 and no DNS", resp.Router(), resp.Options.Has(dhcpv4.OptionDomainNameServer))
	}
}

func TestResolvers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, []byte(text), 0o644))
		return p
	}
	stub := write("stub", "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n")
	upstream := write("upstream", "# systemd-resolved\nnameserver 192.0.2.1\nnameserver 192.0.2.2 # second\nnameserver\n")
	junk := write("junk", "nameserver bogus\nnameserver 0.0.0.0\nnameserver 127.1.2.3\nnameservers 192.0.2.9\n")
	tests := []struct {
		name  string
		paths []string
		want  string
		from  string
	}{
		{"upstream", []string{upstream}, "[192.0.2.1 192.0.2.2]", upstream},
		{"stub falls through", []string{stub, upstream}, "[192.0.2.1 192.0.2.2]", upstream},
		{"stub only", []string{stub}, "[]", ""},
		{"missing file", []string{filepath.Join(dir, "none"), upstream}, "[192.0.2.1 192.0.2.2]", upstream},
		{"junk", []string{junk}, "[]", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, from := resolvers(tt.paths...)
			if fmt.Sprint(got) != tt.want || from != tt.from {
				t.Errorf("got %v from %q, want %s from %q", got, from, tt.want, tt.from)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
