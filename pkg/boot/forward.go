package boot

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// This file is the DHCP side of `ipforward`: the master as router and
// its DNS servers as the nodes'.

// DefaultResolvConf is where the master's DNS servers are read.
const DefaultResolvConf = "/etc/resolv.conf"

// systemdResolvConf lists systemd-resolved's upstream servers, for a
// master whose /etc/resolv.conf names only its 127.0.0.53 stub.
const systemdResolvConf = "/run/systemd/resolve/resolv.conf"

// forwardOptions are the options an answer carries under ipforward: the
// router (this server) and the DNS servers; none without ipforward.
func (s *Server) forwardOptions() []dhcpv4.Modifier {
	if !s.forward {
		return nil
	}
	mods := []dhcpv4.Modifier{dhcpv4.WithRouter(s.addr.Addr().AsSlice())}
	if dns := *s.dns.Load(); len(dns) > 0 {
		mods = append(mods, dhcpv4.WithDNS(dns...))
	}
	return mods
}

// readResolvers loads the master's DNS servers for ipforward answers:
// from o.ResolvConf, or /etc/resolv.conf then systemd-resolved's list.
func (s *Server) readResolvers() {
	paths := []string{s.o.ResolvConf}
	if s.o.ResolvConf == "" {
		paths = []string{DefaultResolvConf, systemdResolvConf}
	}
	dns, from := resolvers(paths...)
	s.dns.Store(&dns)
	if len(dns) == 0 {
		s.log.Warn("ipforward: the master has no DNS server nodes can use (none, or only loopback or IPv6 ones); DHCP gives nodes none",
			"read", strings.Join(paths, ", "))
		return
	}
	s.log.Info("ipforward: DHCP gives nodes the master as router and its DNS servers", "router", s.addr.Addr(), "dns", dns, "from", from)
}

// resolvers returns the IPv4 nameservers of the first file in paths that
// names any, leaving out loopback ones (a local stub such as
// systemd-resolved's 127.0.0.53 or dnsmasq's 127.0.0.1 does not answer
// nodes) and IPv6 ones (DHCPv4 option 6 carries IPv4 addresses); and
// the file they came from.
func resolvers(paths ...string) ([]net.IP, string) {
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var ips []net.IP
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 || f[0] != "nameserver" {
				continue
			}
			a, err := netip.ParseAddr(f[1])
			if a = a.Unmap(); err != nil || !a.Is4() || a.IsLoopback() || a.IsUnspecified() {
				continue
			}
			ips = append(ips, a.AsSlice())
		}
		if len(ips) > 0 {
			return ips, p
		}
	}
	return nil, ""
}
