package nss

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/beo-cluster/beo/pkg/config"
)

// LoadCluster reads the cluster config for the name tools (beonss,
// kickbackdaemon): the built-in default when the file is missing and was
// not named explicitly. The master's address is master when valid, else
// the IPv4 address of the config's first `interface` (invalid when that
// interface does not exist here: then there are no master names).
func LoadCluster(path string, explicit bool, master netip.Addr) (*config.Config, netip.Addr, error) {
	var opt config.Options
	if master.IsValid() {
		opt.Masters = []netip.Addr{master}
	}
	cfg, err := config.Load(path, opt)
	switch {
	case errors.Is(err, os.ErrNotExist) && !explicit:
		cfg = config.Default()
	case err != nil:
		return nil, master, err
	}
	if !master.IsValid() {
		if ifs := cfg.Interfaces(); len(ifs) > 0 {
			master, _ = InterfaceAddr(ifs[0])
		}
	}
	return cfg, master, nil
}

// InterfaceAddr returns the first IPv4 address of the named interface.
func InterfaceAddr(name string) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %s: %w", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %s: %w", name, err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP.To4()); ok && ipn.IP.To4() != nil {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no IPv4 address", name)
}
