package pid1

import (
	"testing"

	"github.com/beo-cluster/beo/pkg/nodefs"
)

// TestMountsContract: what init mounts is what nodefs.Mounts says it
// mounts (pkg/fstab checks fstab lines against that list), the RAM
// root aside.
func TestMountsContract(t *testing.T) {
	ms := basicMounts()
	if len(ms) != len(nodefs.Mounts)-1 {
		t.Errorf("init mounts %d file systems, nodefs.Mounts lists %d besides /", len(ms), len(nodefs.Mounts)-1)
	}
	for _, m := range ms {
		if typ, ok := nodefs.Mounts[m.target]; !ok || typ != m.fstype {
			t.Errorf("init mounts %s on %s; nodefs.Mounts says %q", m.fstype, m.target, typ)
		}
	}
}
