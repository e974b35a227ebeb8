package lab

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/mpi"
)

// NamespaceFile is where StartCluster's caller may note the namespace of
// a running lab (DIR/namespace) for a second shell to enter (beo lab
// -enter DIR).
const NamespaceFile = "namespace"

// hostsFile is the hosts file a cluster's users see, written once.
type hostsFile struct {
	once sync.Once
	path string
	err  error
}

// Hosts writes, once, the hosts file of the cluster's names a user's
// command sees (DIR/hosts, see HostsFile) and returns its path.
func (c *Cluster) Hosts() (string, error) {
	h := &c.hosts
	h.once.Do(func() {
		master := c.Lab.Addr.Addr()
		cfg, err := config.Load(c.Config, config.Options{Masters: []netip.Addr{master}})
		if cfg == nil {
			h.err = err
			return
		}
		h.path, h.err = HostsFile(c.Dir, cfg, master)
	})
	return h.path, h.err
}

// UserEnv is what a user of the lab has in the master's namespace: the
// master's socket, its dashboard (on the namespace's loopback) and the
// MPI launchers' settings (DIR/mpi/env.sh, pkg/mpi).
func (c *Cluster) UserEnv() []string {
	return UserEnv(c.Dir)
}

// UserEnv is Cluster.UserEnv for the lab whose state directory is dir;
// HomeEnv names the lab's home directory (the nodes' /home) when it has
// one.
func UserEnv(dir string) []string {
	env := []string{bproc.SocketEnv + "=" + filepath.Join(dir, "bpmaster.sock"), dashboard.URLEnv + "=" + dashboard.DefaultURL}
	if fi, err := os.Stat(HomeDir(dir)); err == nil && fi.IsDir() {
		env = append(env, HomeEnv+"="+HomeDir(dir))
	}
	return append(env, mpi.DirEnv(filepath.Join(dir, "mpi"))...)
}

// HomeEnv is the variable that tells a lab user's command where on the
// master the nodes' /home is (DefaultFstab).
const HomeEnv = "BEO_LAB_HOME"

// UserCommand returns a command running argv as u (zero: the caller) in
// the master's namespace with the cluster's names (Lab.UserCommand), in
// dir, with env.
func (c *Cluster) UserCommand(ctx context.Context, u User, dir string, env, argv []string) (*exec.Cmd, error) {
	hosts, err := c.Hosts()
	if err != nil {
		return nil, err
	}
	return c.Lab.UserCommand(ctx, c.o.Exe, hosts, u, dir, env, argv), nil
}
