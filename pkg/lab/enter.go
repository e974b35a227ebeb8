package lab

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/nss"
	"golang.org/x/sys/unix"
)

// Where a head-node user is.
//
// A user of a real head node runs mpirun where the nodes can reach it:
// MPI daemons on the nodes connect back to it over TCP. In a lab that is
// the master's network namespace, not the host's. UserCommand runs a
// command there as a user would: in the namespace, with the cluster's
// names resolvable (/etc/hosts replaced, for that command alone, by the
// host's lines plus the cluster's block: `n0`, `.0`, `master`, …, as
// beonss writes on a head node), as a given user. The helper that does
// it is this binary run as EnterArg0 (main.go): as root it enters a new
// mount namespace and the lab's network namespace (as `ip netns exec`
// does, remounting /sys), binds the hosts file over /etc/hosts, drops to
// the user, and execs the command; it is killed when its starter dies.

// EnterArg0 is argv[0] of the helper (main.go runs Enter for it).
const EnterArg0 = "beo-lab-enter"

// User is who a command runs as; the zero User is the caller.
type User struct {
	UID, GID uint32
	Groups   []uint32
	Set      bool
}

// HostsFile writes dir/hosts: the host's /etc/hosts, then the cluster's
// names for cfg with the master at master (pkg/nss). It returns its path.
func HostsFile(dir string, cfg *config.Config, master netip.Addr) (string, error) {
	base, err := os.ReadFile("/etc/hosts")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	data, err := nss.ReplaceBlock(base, nss.FromConfig(cfg, master).HostsBlock())
	if err != nil {
		return "", fmt.Errorf("hosts for the lab: %w", err)
	}
	p := filepath.Join(dir, "hosts")
	return p, os.WriteFile(p, data, 0o644)
}

// UserCommand returns a command that runs argv in the lab's namespace
// with hosts over /etc/hosts (see HostsFile; "" keeps the host's), as u,
// in dir ("": the caller's working directory), with env. exe is this
// beo binary. Like Command, it gets SIGKILL when its starter's thread
// dies; unlike the lab's own processes, Close does not stop it.
func (l *Lab) UserCommand(ctx context.Context, exe, hosts string, u User, dir string, env, argv []string) *exec.Cmd {
	args := []string{EnterArg0, "-netns", filepath.Join(NetnsDir, l.NS), "-hosts", hosts, "-self", exe}
	if u.Set {
		gs := make([]string, len(u.Groups))
		for i, g := range u.Groups {
			gs[i] = strconv.FormatUint(uint64(g), 10)
		}
		args = append(args, "-uid", strconv.FormatUint(uint64(u.UID), 10), "-gid", strconv.FormatUint(uint64(u.GID), 10), "-groups", strings.Join(gs, ","))
	}
	if dir != "" {
		args = append(args, "-dir", dir)
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Args = append(append(args, "--"), argv...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Enter is the helper UserCommand runs: it never returns but by exiting
// (127 when it cannot run the command, after saying why on stderr).
func Enter() {
	if err := enter(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "beo lab: %v\n", err)
	}
	os.Exit(127)
}

func enter(args []string) error {
	fs := flag.NewFlagSet(EnterArg0, flag.ContinueOnError)
	netns := fs.String("netns", "", "")
	hosts := fs.String("hosts", "", "")
	self := fs.String("self", "", "")
	dir := fs.String("dir", "", "")
	uid := fs.Int("uid", -1, "")
	gid := fs.Int("gid", -1, "")
	groups := fs.String("groups", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return errors.New("no command")
	}
	// Namespaces and the mounts are this thread's; exec keeps them.
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount namespace: %w", err)
	}
	ns, err := unix.Open(*netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lab namespace %s: %w", *netns, err)
	}
	if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter %s: %w", *netns, err)
	}
	unix.Close(ns)
	// /sys shows the namespace's interfaces, as under ip netns exec.
	if unix.Unmount("/sys", unix.MNT_DETACH) == nil {
		unix.Mount(filepath.Base(*netns), "/sys", "sysfs", 0, "")
	}
	if *hosts != "" {
		if err := unix.Mount(*hosts, "/etc/hosts", "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("cluster names on /etc/hosts: %w", err)
		}
	}
	if *uid >= 0 {
		var gs []int
		for _, g := range strings.FieldsFunc(*groups, func(r rune) bool { return r == ',' }) {
			n, err := strconv.Atoi(g)
			if err != nil {
				return fmt.Errorf("group %q: %w", g, err)
			}
			gs = append(gs, n)
		}
		if err := syscall.Setgroups(gs); err != nil {
			return fmt.Errorf("groups: %w", err)
		}
		if err := syscall.Setgid(*gid); err != nil {
			return fmt.Errorf("gid %d: %w", *gid, err)
		}
		if err := syscall.Setuid(*uid); err != nil {
			return fmt.Errorf("uid %d: %w", *uid, err)
		}
		// A change of credentials clears the parent-death signal.
		unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0)
	}
	if *dir != "" {
		if err := os.Chdir(*dir); err != nil {
			return err
		}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		if *self == "" || strings.Contains(argv[0], "/") {
			return err
		}
		// Not a program: an applet of this binary (`beo lab version`).
		path, argv = *self, append([]string{*self}, argv...)
	}
	return syscall.Exec(path, argv, os.Environ())
}
