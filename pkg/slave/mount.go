package slave

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/beo-cluster/beo/pkg/fstab"
	"github.com/beo-cluster/beo/pkg/wire"
	"golang.org/x/sys/unix"
)

// This file carries out OpMount: the node's fstab lines, which the
// master sends while the node is in boot (see pkg/fstab for what a line
// means and pkg/master for the states).
//
// Each mount, in order:
//
//  1. a target that already holds a mount of that type (and, for a
//     network file system, that source) — /proc, the node's RAM root, or
//     an NFS mount made before the master restarted — is left alone and
//     reported Already;
//  2. the modules its type needs (fstab.Modules: nfsv4 and its
//     dependencies for nfs4) are loaded through Config.LoadModules, since
//     the node's kernel has no modprobe to load them on demand;
//  3. the target directory is made, and mount(2) (swapon(2) for swap)
//     called with the flags and data of fstab.KernelArgs.
//
// Steps 2 and 3 run on their own goroutine, bounded by the request's
// Timeout (DefaultMountTimeout): a mount that hangs — an NFS server that
// does not answer — is reported failed when the time is up and left
// behind; it cannot be taken back (the kernel holds the thread), and it
// may still complete later. A failed Fatal mount ends the list: the node
// is going to error, and later lines may depend on it.
//
// Before the mounts, the node writes the files the request carries:
// for a node that mirrors the master's /usr, copies of the /etc that
// goes with it (master.UsrEtc: the alternatives links /usr points into,
// OpenMPI's system parameters), so the master's programs behave on the
// node as on the master.
//
// A successful Mirror mount (the master's PATH at PATH) is remembered:
// from then on exec and stage leave out of what they ask the master for
// every program and library file under it — the node reads the master's
// own copy through the mount, and placing a file there would fail on a
// read-only mount anyway. Files elsewhere are still cached by content.

// DefaultMountTimeout bounds one mount attempt when the master names no
// Timeout.
const DefaultMountTimeout = 30 * time.Second

// mount serves an OpMount stream.
func (ss *session) mount(st net.Conn, req *wire.Mounts) {
	defer st.Close()
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultMountTimeout
	}
	ss.files(req.Files)
	var mirrors []string
	for i, m := range req.Mounts {
		start := time.Now()
		already, err := ss.mountOne(m, timeout)
		res := wire.MountResult{Index: i, Already: already, Took: time.Since(start)}
		if err != nil {
			res.Err = ss.view(err)
			ss.log.Warn("mount failed", "node", ss.node, "line", fmt.Sprintf("%s:%d", m.File, m.Line), "target", m.Target, "err", res.Err)
		} else {
			ss.log.Info("mounted", "node", ss.node, "source", m.Source, "target", m.Target, "type", m.Type, "already", already, "took", res.Took.Round(time.Millisecond))
			if m.Mirror {
				mirrors = append(mirrors, filepath.Clean("/"+m.Target))
			}
		}
		st.SetWriteDeadline(time.Now().Add(drainTimeout))
		if werr := wire.Write(st, res); werr != nil {
			ss.log.Warn("mount result not delivered", "node", ss.node, "err", werr)
			break
		}
		if err != nil && m.Fatal {
			break
		}
	}
	ss.setMirrors(mirrors)
}

// files writes the files a mount request carries (copies of the
// master's /etc that go with its /usr, see master.UsrEtc), before the
// mounts: a link may point into a tree not mounted yet. One that cannot
// be written is logged, and the mounts go on.
func (ss *session) files(etc []wire.EtcFile) {
	made := 0
	dirs := make(map[string]bool) // directories made or found
	for _, f := range etc {
		if !filepath.IsAbs(f.Path) || filepath.Clean(f.Path) != f.Path || f.Path == "/" {
			ss.log.Warn("file refused", "node", ss.node, "path", f.Path)
			continue
		}
		if err := writeEtcFile(rooted(ss.cfg.Root, f.Path), f, dirs); err != nil {
			ss.log.Warn("file not written", "node", ss.node, "path", f.Path, "err", err)
			continue
		}
		made++
	}
	if len(etc) > 0 {
		ss.log.Info("files of the master's /etc written", "node", ss.node, "count", made, "of", len(etc))
	}
}

// writeEtcFile puts f at p, replacing what is there atomically: a link
// already as f says is left alone, a link where nothing is is made in
// place (it appears whole), and anything else is written beside p and
// renamed over it. Most of what a node gets is links to a fresh /etc
// (/etc/alternatives): the fast way costs two system calls each instead
// of six, which on an emulated node is a tenth of a second of its boot.
// dirs remembers the directories made or found.
func writeEtcFile(p string, f wire.EtcFile, dirs map[string]bool) error {
	dir := filepath.Dir(p)
	if f.Link != "" {
		cur, err := os.Readlink(p)
		if err == nil && cur == f.Link {
			return nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			if err := mkdirOnce(dir, dirs); err != nil {
				return err
			}
			if err := os.Symlink(f.Link, p); !errors.Is(err, fs.ErrExist) {
				return err // made, or failed for another reason than a newcomer at p
			}
		}
	}
	if err := mkdirOnce(dir, dirs); err != nil {
		return err
	}
	tmp := p + ".beo-new"
	os.Remove(tmp)
	var err error
	if f.Link != "" {
		err = os.Symlink(f.Link, tmp)
	} else {
		err = os.WriteFile(tmp, f.Data, f.Mode.Perm())
	}
	if err == nil {
		if err = os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
		}
	}
	return err
}

// mkdirOnce makes dir (and its parents) unless dirs says it exists.
func mkdirOnce(dir string, dirs map[string]bool) error {
	if dirs[dir] {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dirs[dir] = true
	return nil
}

// mountOne carries out one mount (see above); already reports a target
// found mounted.
func (ss *session) mountOne(m wire.Mount, timeout time.Duration) (already bool, err error) {
	if m.Type == "" || m.Source == "" || m.Target == "" {
		return false, errors.New("incomplete mount request")
	}
	target := rooted(ss.cfg.Root, m.Target)
	if m.Type == "swap" {
		target = rooted(ss.cfg.Root, m.Source)
	}
	if ss.mounted(m, target) {
		return true, nil
	}
	mount := ss.cfg.Mount
	if mount == nil {
		mount = sysMount
	}
	done := make(chan error, 1)
	go func() {
		var merr error
		if load := ss.cfg.LoadModules; load != nil {
			if names := fstab.Modules(m.Type); len(names) > 0 {
				start := time.Now()
				merr = load(names...)
				ss.log.Info("kernel modules for a mount", "node", ss.node, "type", m.Type, "modules", names, "took", time.Since(start).Round(time.Millisecond), "err", merr)
			}
		}
		flags, data := fstab.KernelArgs(m.Options)
		var err error
		if m.Type != "swap" {
			err = os.MkdirAll(target, 0o755)
		}
		if err == nil {
			err = mount(m.Source, target, m.Type, flags, data)
		}
		if err != nil {
			if merr != nil {
				err = fmt.Errorf("%w (loading modules: %v)", err, merr)
			}
			if m.Type == "swap" {
				err = fmt.Errorf("swapon %s: %w", m.Source, err)
			} else {
				err = fmt.Errorf("mount %s on %s (%s): %w", m.Source, target, m.Type, err)
			}
		}
		done <- err
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return false, err
	case <-t.C:
		return false, fmt.Errorf("mount %s on %s (%s): no answer within %v; left trying", m.Source, target, m.Type, timeout)
	}
}

// sysMount is mount(2), or swapon(2) for type swap.
func sysMount(source, target, fstype string, flags uintptr, data string) error {
	if fstype == "swap" {
		p, err := unix.BytePtrFromString(target)
		if err != nil {
			return err
		}
		if _, _, e := unix.Syscall(unix.SYS_SWAPON, uintptr(unsafe.Pointer(p)), 0, 0); e != 0 {
			return e
		}
		return nil
	}
	return unix.Mount(source, target, fstype, flags, data)
}

// mounted reports whether target already holds what m mounts: the
// topmost mount there has m's type (nfs4 for nfs with a 4.x version) and,
// for a network file system, m's source. For swap: the file or device is
// in use as swap already.
func (ss *session) mounted(m wire.Mount, target string) bool {
	info := ss.cfg.MountInfo
	if info == "" {
		info = "/proc/self/mountinfo"
	}
	if m.Type == "swap" {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(info)), "swaps"))
		if err != nil {
			return false
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			if f := strings.Fields(l); len(f) > 0 && unescapeMount(f[0]) == target {
				return true
			}
		}
		return false
	}
	mi, err := readMountInfo(info)
	if err != nil {
		return false
	}
	var top *mountEntry
	for i := range mi {
		if mi[i].point == target {
			top = &mi[i]
		}
	}
	if top == nil || top.fstype != m.Type {
		return false
	}
	if m.Type == "nfs" || m.Type == "nfs4" {
		return top.source == m.Source
	}
	return true
}

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct{ point, fstype, source string }

// readMountInfo reads the mount point, type and source of each mount.
func readMountInfo(path string) ([]mountEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL…] - TYPE SOURCE SUPER
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 2 {
			continue
		}
		out = append(out, mountEntry{point: unescapeMount(a[4]), fstype: b[0], source: unescapeMount(b[1])})
	}
	return out, sc.Err()
}

// unescapeMount decodes the kernel's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// setMirrors records the node paths that hold the master's own trees.
func (s *slave) setMirrors(paths []string) {
	slices.Sort(paths)
	s.mirrors.Store(&paths)
}

// mirrored reports whether p (a path on the master, as a closure names
// it) lies under a mirror mount.
func (s *slave) mirrored(p string) bool {
	ms := s.mirrors.Load()
	if ms == nil {
		return false
	}
	for _, m := range *ms {
		if m == "/" || p == m || strings.HasPrefix(p, m+"/") {
			return true
		}
	}
	return false
}

// unmirrored drops the files a mirror mount already shows the node.
func (s *slave) unmirrored(files []fileRef) []fileRef {
	if ms := s.mirrors.Load(); ms == nil || len(*ms) == 0 {
		return files
	}
	out := files[:0:0]
	for _, f := range files {
		if !s.mirrored(f.Path) {
			out = append(out, f)
		}
	}
	return out
}
