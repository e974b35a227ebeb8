package slave

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
	"golang.org/x/sys/unix"
)

// fakeMounts stands in for mount(2) and the module loader.
type fakeMounts struct {
	mu      sync.Mutex
	calls   []string
	modules []string
	act     func(source, target, fstype string) error
	release chan struct{} // closed at cleanup: lets hung mounts return
}

func (f *fakeMounts) mount(source, target, fstype string, flags uintptr, data string) error {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf("%s %s %s %#x %s", source, target, fstype, flags, data))
	f.mu.Unlock()
	if f.act != nil {
		return f.act(source, target, fstype)
	}
	return nil
}

func (f *fakeMounts) load(names ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.modules = append(f.modules, names...)
	return nil
}

func (f *fakeMounts) config(info string) func(*Config) {
	return func(c *Config) {
		c.Mount, c.LoadModules, c.MountInfo = f.mount, f.load, info
	}
}

// mountList sends an OpMount and collects the results until the slave
// closes the stream.
func (s *conn) mountList(t *testing.T, req wire.Mounts) []wire.MountResult {
	t.Helper()
	st := s.open(t, wire.Header{Op: wire.OpMount, Mount: &req})
	defer st.Close()
	var out []wire.MountResult
	for {
		var r wire.MountResult
		if err := wire.Read(st, &r); err != nil {
			return out
		}
		out = append(out, r)
	}
}

func TestMount(t *testing.T) {
	m := newMaster(t, steady)
	info := filepath.Join(t.TempDir(), "mountinfo")
	f := &fakeMounts{release: make(chan struct{})}
	t.Cleanup(func() { close(f.release) })
	root := startSlave(t, m, f.config(info))
	// What the node has mounted already: its root, /proc, and (as after
	// a master restart) an NFS /home.
	os.WriteFile(info, []byte(fmt.Sprintf(`22 1 0:21 / / rw,relatime - tmpfs tmpfs rw
23 22 0:22 / %[1]s/proc rw,nosuid - proc proc rw
30 22 0:40 / %[1]s/home rw - nfs4 10.54.0.1:/home rw,vers=4.2
31 22 0:41 / %[1]s/with\040space rw - tmpfs tmpfs rw
`, root)), 0o644)
	f.act = func(source, target, fstype string) error {
		switch source {
		case "10.54.0.1:/missing":
			return syscall.ENOENT
		case "10.54.0.9:/hangs":
			<-f.release
			return nil
		case "10.54.0.1:/fatal":
			return syscall.EACCES
		}
		return nil
	}
	s := m.next(t)
	ms := []wire.Mount{
		{Source: "none", Target: "/proc", Type: "proc", Fatal: true, File: "fstab", Line: 1},
		{Source: "10.54.0.1:/home", Target: "/home", Type: "nfs4", Options: "rw,vers=4.2,addr=10.54.0.1", Fatal: true, Line: 2},
		{Source: "tmpfs", Target: "/with space", Type: "tmpfs", Line: 3},
		{Source: "10.54.0.1:/usr", Target: "/usr", Type: "nfs4", Options: "ro,vers=4.2,addr=10.54.0.1", Fatal: true, Mirror: true, Line: 4},
		{Source: "10.54.0.1:/missing", Target: "/missing", Type: "nfs4", Options: "addr=10.54.0.1", Line: 5},
		{Source: "10.54.0.9:/hangs", Target: "/hangs", Type: "nfs4", Options: "addr=10.54.0.9", Line: 6},
		{Source: "tmpfs", Target: "/scratch", Type: "tmpfs", Options: "size=1m,nosuid", Fatal: true, Line: 7},
		{Source: "10.54.0.1:/fatal", Target: "/fatal", Type: "nfs", Options: "vers=3", Fatal: true, Line: 8},
		{Source: "tmpfs", Target: "/never", Type: "tmpfs", Line: 9},
	}
	start := time.Now()
	got := s.mountList(t, wire.Mounts{Mounts: ms, Timeout: 300 * time.Millisecond})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the list took %v: a hung mount held it up", took)
	}
	type res struct {
		already bool
		err     string
	}
	want := []res{
		{true, ""}, {true, ""}, {true, ""}, {false, ""},
		{false, "mount 10.54.0.1:/missing on /missing (nfs4): no such file or directory"},
		{false, "no answer within 300ms; left trying"},
		{false, ""},
		{false, "mount 10.54.0.1:/fatal on /fatal (nfs): permission denied"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d results %+v, want %d (the list stops after the fatal failure)", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Index != i || g.Already != w.already || (w.err == "") != (g.Err == "") || !strings.Contains(g.Err, w.err) {
			t.Errorf("result %d = %+v, want already=%v err ~ %q", i, g, w.already, w.err)
		}
	}
	f.mu.Lock()
	calls, modules := f.calls, f.modules
	f.mu.Unlock()
	wantCalls := []string{
		"10.54.0.1:/usr " + root + "/usr nfs4 0x1 vers=4.2,addr=10.54.0.1",
		"10.54.0.1:/missing " + root + "/missing nfs4 0x0 addr=10.54.0.1",
		"10.54.0.9:/hangs " + root + "/hangs nfs4 0x0 addr=10.54.0.9",
		fmt.Sprintf("tmpfs %s/scratch tmpfs %#x size=1m", root, unix.MS_NOSUID),
		"10.54.0.1:/fatal " + root + "/fatal nfs 0x0 vers=3",
	}
	if !reflect.DeepEqual(calls, wantCalls) {
		t.Errorf("mount calls\n%s\nwant\n%s", strings.Join(calls, "\n"), strings.Join(wantCalls, "\n"))
	}
	if want := []string{"nfsv4", "nfsv4", "nfsv4", "nfsv3", "nfsv2"}; !reflect.DeepEqual(modules, want) {
		t.Errorf("modules loaded %v, want %v", modules, want)
	}
	for _, d := range []string{"usr", "scratch"} {
		if fi, err := os.Stat(filepath.Join(root, d)); err != nil || !fi.IsDir() {
			t.Errorf("target %s not made: %v", d, err)
		}
	}
}

// TestMountMirror: after the master's /bin is mounted at /bin, a program
// under it is taken from there — the node asks for nothing — while a
// program elsewhere is still sent.
func TestMountMirror(t *testing.T) {
	m := newMaster(t, steady)
	f := &fakeMounts{}
	root := startSlave(t, m, f.config(filepath.Join(t.TempDir(), "none")))
	echo := program(t, "/bin/echo")
	f.act = func(source, target, fstype string) error {
		// The "mount" shows the master's echo at the node's /bin/echo.
		b, err := os.ReadFile(echo.reals[echo.refs[0].Hash])
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(target, "echo"), b, 0o755)
	}
	s := m.next(t)
	res := s.mountList(t, wire.Mounts{Mounts: []wire.Mount{{Source: "10.54.0.1:/bin", Target: "/bin", Type: "nfs4", Mirror: true, Fatal: true}}})
	if len(res) != 1 || res[0].Err != "" {
		t.Fatalf("mount: %+v", res)
	}
	r := s.start(t, wire.Exec{Argv: []string{"echo", "from the mount"}}, echo, execOpts{})
	if len(r.need) != 0 {
		t.Errorf("exec of a program under the mirror asked for %v, want nothing", r.need)
	}
	if res := r.wait(t); res != (wire.Result{}) || r.stdout.String() != "from the mount\n" {
		t.Errorf("got %+v %q", res, r.stdout.String())
	}
	if _, err := os.Stat(filepath.Join(root, "var/cache/beo")); err == nil {
		if ents, _ := os.ReadDir(filepath.Join(root, "var/cache/beo")); len(ents) != 0 {
			t.Errorf("cache holds %d objects, want none", len(ents))
		}
	}
	// A program outside the mirror is sent as before.
	other := program(t, "/bin/true")
	other.refs[0].Path = "/opt/true"
	r = s.start(t, wire.Exec{Argv: []string{"true"}}, other, execOpts{})
	if len(r.need) != 1 {
		t.Errorf("exec outside the mirror asked for %v, want its file", r.need)
	}
	r.wait(t)
}

// TestMountFiles: the files a mount request carries (copies of the
// master's /etc) are written before the mounts, replacing what was
// there; a relative path is refused.
func TestMountFiles(t *testing.T) {
	m := newMaster(t, steady)
	f := &fakeMounts{}
	root := startSlave(t, m, f.config(filepath.Join(t.TempDir(), "none")))
	alt := filepath.Join(root, "etc/alternatives")
	os.MkdirAll(alt, 0o755)
	os.Symlink("/old", filepath.Join(alt, "mpirun"))
	os.WriteFile(filepath.Join(alt, "mpicc"), []byte("a file where a link goes"), 0o644)
	seenc := make(chan []string, 1) // the mount runs on a goroutine of its own
	f.act = func(source, target, fstype string) error {
		seen, _ := filepath.Glob(filepath.Join(root, "etc/*/*"))
		seenc <- seen
		return nil
	}
	s := m.next(t)
	res := s.mountList(t, wire.Mounts{
		Mounts: []wire.Mount{{Source: "10.54.0.1:/usr", Target: "/usr", Type: "nfs4", Mirror: true, Fatal: true}},
		Files: []wire.EtcFile{
			{Path: "/etc/alternatives/mpirun", Link: "/usr/bin/mpirun.openmpi"},
			{Path: "/etc/alternatives/libblas.so.3", Link: "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"},
			{Path: "/etc/alternatives/mpicc", Link: "/usr/bin/mpicc.openmpi"},
			{Path: "/etc/ucx/new/link", Link: "/usr/x"},
			{Path: "/etc/openmpi/openmpi-mca-params.conf", Data: []byte("mtl = ^ofi\n"), Mode: 0o644},
			{Path: "etc/relative", Link: "/x"},
		},
	})
	if len(res) != 1 || res[0].Err != "" {
		t.Fatalf("mount: %+v", res)
	}
	if seen := <-seenc; len(seen) != 5 {
		t.Errorf("files when the mount ran: %v, want all five written before it", seen)
	}
	for name, want := range map[string]string{"alternatives/mpirun": "/usr/bin/mpirun.openmpi", "alternatives/libblas.so.3": "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3",
		"alternatives/mpicc": "/usr/bin/mpicc.openmpi", "ucx/new/link": "/usr/x"} {
		if got, err := os.Readlink(filepath.Join(root, "etc", name)); err != nil || got != want {
			t.Errorf("%s → %q, %v; want %s", name, got, err, want)
		}
	}
	p := filepath.Join(root, "etc/openmpi/openmpi-mca-params.conf")
	if b, err := os.ReadFile(p); err != nil || string(b) != "mtl = ^ofi\n" {
		t.Errorf("%s: %q, %v", p, b, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("%s: mode %v, %v; want 0644", p, fi.Mode(), err)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/relative")); err == nil {
		t.Error("a relative path was written")
	}
}

func TestReadMountInfo(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mi")
	os.WriteFile(p, []byte("36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 - ext3 /dev/root rw,errors=continue\nbroken line\n"), 0o644)
	got, err := readMountInfo(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []mountEntry{{"/mnt/a b", "ext3", "/dev/root"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestMirrored(t *testing.T) {
	var s slave
	if s.mirrored("/usr/bin/x") {
		t.Error("mirrored with no mirrors")
	}
	s.setMirrors([]string{"/usr", "/opt/x"})
	for p, want := range map[string]bool{"/usr": true, "/usr/bin/sh": true, "/usrx/a": false, "/opt/x/y": true, "/opt/y": false, "/bin/sh": false} {
		if got := s.mirrored(p); got != want {
			t.Errorf("mirrored(%s) = %v, want %v", p, got, want)
		}
	}
	files := []fileRef{{Path: "/usr/lib/libc.so.6"}, {Path: "/lib", Target: "usr/lib"}, {Path: "/opt/x/bin/p"}}
	if got := s.unmirrored(files); len(got) != 1 || got[0].Path != "/lib" {
		t.Errorf("unmirrored = %+v, want only /lib", got)
	}
}
