package nss

import (
	"errors"
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
			if p, err := config.InterfaceAddr(ifs[0]); err == nil {
				master = p.Addr()
			}
		}
	}
	return cfg, master, nil
}
