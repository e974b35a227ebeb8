package pid1

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/beo-cluster/beo/pkg/nodefs"
	"golang.org/x/sys/unix"
)

// A mountPoint is one file system init mounts.
type mountPoint struct {
	source, target, fstype, data string
	flags                        uintptr
	mode                         os.FileMode
}

// basicMounts are what every stage needs: the kernel's interfaces and a
// /run. (devtmpfs is not mounted by Debian's kernel on its own.) A
// failure of one (a kernel without cgroup2) is logged and boot goes on.
func basicMounts() []mountPoint {
	const nosuid = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	return []mountPoint{
		{"proc", "/proc", "proc", "", nosuid, 0o555},
		{"sysfs", "/sys", "sysfs", "", nosuid, 0o555},
		// The jobs' cgroups (pkg/slave cgroup.go); nsdelegate as systemd
		// mounts it.
		{"cgroup2", nodefs.CgroupMount, "cgroup2", "nsdelegate", nosuid, 0o555},
		{"devtmpfs", "/dev", "devtmpfs", "mode=0755", unix.MS_NOSUID, 0o755},
		{"devpts", "/dev/pts", "devpts", "gid=5,mode=620,ptmxmode=666", unix.MS_NOSUID | unix.MS_NOEXEC, 0o755},
		{"tmpfs", "/dev/shm", "tmpfs", "mode=1777", unix.MS_NOSUID | unix.MS_NODEV, 0o1777},
		{"tmpfs", "/run", "tmpfs", "mode=0755", unix.MS_NOSUID | unix.MS_NODEV, 0o755},
	}
}

// mountAll mounts each of ms under root; one that is already mounted
// (EBUSY) is fine.
func mountAll(root string, ms []mountPoint) error {
	var errs []error
	for _, m := range ms {
		t := filepath.Join(root, m.target)
		if err := os.MkdirAll(t, m.mode); err != nil {
			errs = append(errs, fmt.Errorf("mount %s: %w", t, err))
			continue
		}
		if err := unix.Mount(m.source, t, m.fstype, m.flags, m.data); err != nil && err != unix.EBUSY {
			errs = append(errs, fmt.Errorf("mount %s on %s: %w", m.fstype, t, err))
		}
	}
	return errors.Join(errs...)
}

// tmpfsSize turns rootfs_size= into a tmpfs size= option value: a byte
// count with an optional k, m, g suffix, or a percentage of RAM.
func tmpfsSize(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty")
	}
	num := strings.TrimSuffix(s, "%")
	if num == s {
		num = strings.TrimRight(s, "kKmMgG")
		if len(s)-len(num) > 1 {
			return "", fmt.Errorf("rootfs_size=%s: one unit suffix at most", s)
		}
	}
	if num == "" || strings.Trim(num, "0123456789") != "" || strings.Trim(num, "0") == "" {
		return "", fmt.Errorf("rootfs_size=%s: want a positive size like 2g, 512m or 50%%", s)
	}
	if strings.HasSuffix(s, "%") && len(num) > 3 {
		return "", fmt.Errorf("rootfs_size=%s: percentage too large", s)
	}
	return strings.ToLower(s), nil
}
