package boot

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// sentTo records what handleDHCP writes.
type sentTo struct {
	net.PacketConn
	n int
}

func (s *sentTo) WriteTo(b []byte, addr net.Addr) (int, error) { s.n++; return len(b), nil }

// TestDHCPPort: a request from a port that is neither a DHCP client's
// nor a relay's — any user's process can send one, naming any MAC — is
// dropped: no reply, no node booting, no node line for a new MAC.
func TestDHCPPort(t *testing.T) {
	s, dir := testServer(t, baseConfig+"nodeassign append\n")
	var booting []int
	s.o.OnBoot = func(n int) { booting = append(booting, n) }
	madeUp, _ := net.ParseMAC("02:de:ad:00:00:01")
	for _, req := range []*dhcpv4.DHCPv4{packet(t, mac0, pxe(0)), packet(t, madeUp)} {
		var c sentTo
		s.handleDHCP(&c, &net.UDPAddr{IP: net.IPv4(10, 99, 0, 100), Port: 40000}, req)
		if c.n != 0 {
			t.Errorf("a request from port 40000 was answered")
		}
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "config")); strings.Contains(string(data), "02:de:ad") {
		t.Errorf("a made-up MAC from port 40000 got a node line:\n%s", data)
	}
	if len(booting) != 0 {
		t.Errorf("booting %v after requests from port 40000", booting)
	}
	var c sentTo
	s.handleDHCP(&c, &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ClientPort}, packet(t, mac0, pxe(0)))
	if c.n != 1 || len(booting) != 1 || booting[0] != 0 {
		t.Errorf("from the client port: %d replies, booting %v; want 1, [0]", c.n, booting)
	}
}
