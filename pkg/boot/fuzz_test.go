package boot

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// FuzzAnswer feeds arbitrary bytes to the DHCP path exactly as the socket
// would: parse, then answer. Whatever arrives, the server must not panic,
// must answer only with an address the config gives that MAC, never answer
// an ignored MAC, and never write outside its files.
func FuzzAnswer(f *testing.F) {
	seed := func(hw net.HardwareAddr, opts ...reqOpt) {
		d, _ := dhcpv4.NewDiscovery(hw)
		for _, o := range opts {
			o(d)
		}
		f.Add(d.ToBytes())
	}
	seed(mac0)
	seed(mac0, ipxe)
	seed(mac1, pxe(iana.EFI_X86_64))
	seed(mac0, request("10.99.0.100"))
	seed(ignored)
	seed(newMAC)
	f.Add([]byte{1, 1, 6, 0})
	s, dir := testServer(f, baseConfig+"ipforward\n") // answers carry router and DNS too
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := dhcpv4.FromBytes(data)
		if err != nil {
			return
		}
		resp, dst := s.Answer(req)
		if resp == nil {
			return
		}
		if dst == nil {
			t.Fatalf("reply without a destination")
		}
		if resp.ClientHWAddr.String() == ignored.String() {
			t.Fatalf("answered the ignored MAC")
		}
		b := resp.ToBytes()
		if _, err := dhcpv4.FromBytes(b); err != nil {
			t.Fatalf("reply does not parse back: %v", err)
		}
		y := resp.YourIPAddr
		if y == nil || y.IsUnspecified() {
			return
		}
		if !strings.HasPrefix(y.String(), "10.99.0.") {
			t.Fatalf("offered %s, outside the cluster network", y)
		}
	})
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		switch e.Name() {
		case "config", "boot", "tftp", "log", "secret", "unknown_addresses", "resolv.conf":
		default:
			if !strings.HasPrefix(e.Name(), ".config.tmp") {
				f.Errorf("unexpected file %s", filepath.Join(dir, e.Name()))
			}
		}
	}
}

// FuzzOpenIn: a TFTP or HTTP name either opens a regular file inside the
// root or is refused; nothing outside the root is ever read.
func FuzzOpenIn(f *testing.F) {
	for _, s := range []string{"kernel", "escape", "../secret", "/etc/passwd", "a\\..\\secret", "initrd/", "./kernel", "%2e%2e"} {
		f.Add(s)
	}
	s, _ := testServer(f, baseConfig)
	f.Fuzz(func(t *testing.T, name string) {
		file, _, err := openIn(s.boot, name)
		if err != nil {
			return
		}
		defer file.Close()
		buf := make([]byte, 16)
		n, _ := file.Read(buf)
		if string(buf[:n]) == "SECRET" {
			t.Fatalf("%q read the file outside the root", name)
		}
	})
}
