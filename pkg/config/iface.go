package config

import (
	"fmt"
	"net"
	"net/netip"
)

// InterfaceAddr returns the first IPv4 address, with its prefix, of the
// network interface called name on this host: the master's address on a
// cluster interface named by `interface` (or a daemon's -iface flag).
func InterfaceAddr(name string) (netip.Prefix, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("interface %s: %w", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("interface %s: %w", name, err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil {
			continue
		}
		ip, _ := netip.AddrFromSlice(ipn.IP.To4())
		ones, _ := ipn.Mask.Size()
		return netip.PrefixFrom(ip, ones), nil
	}
	return netip.Prefix{}, fmt.Errorf("interface %s has no IPv4 address", name)
}
