package head

import (
	"net/netip"
	"path/filepath"

	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/nfs"
)

// nfsSide builds the node file systems of `beo master` (pkg/nfs,
// pkg/fstab): the fstab files (o.Fstab, and o.Fstab.N per node) that a
// connecting node mounts, and the NFS server that exports what they ask
// of the master — the kernel's nfsd or nfs-ganesha (o.NFS: auto, kernel,
// ganesha, none), ganesha's state beside the client socket (DIR/nfs). It
// needs the master's cluster address, so it exists only with the boot
// server; nil when there is no fstab to read.
func nfsSide(o Options, cur func() *config.Config) (*nfs.Service, error) {
	if o.Fstab == "" || o.Boot == nil {
		return nil, nil
	}
	kind, err := nfs.ParseKind(o.NFS)
	if o.NFS == "" {
		kind, err = nfs.Auto, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := nfs.New(nfs.Options{
		Fstab: o.Fstab, Master: o.Boot.Addr.Addr(), Kind: kind,
		RunDir: filepath.Join(filepath.Dir(o.Socket), "nfs"), Log: o.Log,
		Clients: func() []netip.Prefix {
			r := cur().IPRange()
			return nfs.Prefixes(r.From, r.To)
		},
	})
	if err != nil {
		return nil, err
	}
	k, why := s.Kind()
	o.Log.Info("nfs: server for the fstab's exports", "server", k, "why", why, "fstab", o.Fstab)
	return s, nil
}
