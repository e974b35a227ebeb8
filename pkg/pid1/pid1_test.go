package pid1

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bootparam"
	"github.com/u-root/u-root/pkg/cpio"
	"golang.org/x/sys/unix"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// within polls cond every 10 ms for up to d.
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func TestReaperDeliversAndReapsOrphans(t *testing.T) {
	// Become a subreaper so the orphan below is reparented to this test
	// process, as it would be to PID 1.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("no subreaper: %v", err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	r := NewReaper(quiet())
	defer r.Stop()
	for _, tc := range []struct {
		script string
		want   string
	}{
		{"exit 3", "exit status 3"},
		{"exit 0", "exit status 0"},
		{"kill -9 $$", "killed by killed"},
	} {
		ch, err := r.Start(exec.Command("/bin/sh", "-c", tc.script))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case ws := <-ch:
			if got := describe(ws); got != tc.want {
				t.Errorf("%q: got %q, want %q", tc.script, got, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q: no exit status within 10 s", tc.script)
		}
	}
	// An orphan: sh starts a sleeper in the background and exits; the
	// sleeper's exit reaches the reaper, which nobody asked for it.
	before := r.Orphans()
	ch, err := r.Start(exec.Command("/bin/sh", "-c", "sleep 0.2 & exit 0"))
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	if !within(10*time.Second, func() bool { return r.Orphans() > before }) {
		t.Errorf("orphan not reaped: orphans %d, want more than %d", r.Orphans(), before)
	}
	if _, err := r.Start(&exec.Cmd{Path: "/bin/true", Stdout: &bytes.Buffer{}}); err == nil {
		t.Error("Start with a non-file stdout: no error, want one (nothing would copy it)")
	}
}

func TestSupervisorRestartsAndStops(t *testing.T) {
	r := NewReaper(quiet())
	defer r.Stop()
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	// A fake binary: the service appends a line and exits at once, so
	// it must be restarted; argv[0] is the service name.
	bin := filepath.Join(dir, "beo")
	script := "#!/bin/sh\necho \"$*\" >> " + count + "\n[ \"$1\" = stay ] && exec sleep 60\nexit 1\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	null, _ := os.Open(os.DevNull)
	defer null.Close()
	sv := &supervisor{log: quiet(), reaper: r, binary: bin, env: []string{"PATH=/bin:/usr/bin"},
		stdin: null, stdout: null, params: bootparam.Defaults(), running: map[string]*os.Process{}}
	ctx, cancel := context.WithCancel(context.Background())
	sv.run(ctx, Service{Name: "flaky", Args: func(bootparam.Params) []string { return []string{"flaky"} }})
	sv.run(ctx, Service{Name: "steady", Nice: 7, Args: func(p bootparam.Params) []string { return []string{"stay", p.Rootfs} }})
	lines := func(prefix string) int {
		b, _ := os.ReadFile(count)
		n := 0
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, prefix) {
				n++
			}
		}
		return n
	}
	if !within(10*time.Second, func() bool { return lines("flaky") >= 2 }) {
		t.Errorf("flaky started %d times, want a restart", lines("flaky"))
	}
	if got := lines("stay /boot/rootfs.cpio"); got != 1 {
		t.Errorf("steady started %d times with its args, want 1", got)
	}
	pid := sv.pids()["steady"]
	if pid == 0 {
		t.Fatal("steady not running")
	}
	if got := niceOf(t, pid); got != 7 {
		t.Errorf("steady runs at nice %d, want 7", got)
	}
	cancel()
	done := make(chan struct{})
	go func() { sv.wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopWait + 5*time.Second):
		t.Fatal("supervisor did not stop its services")
	}
	if err := unix.Kill(pid, 0); err == nil {
		t.Errorf("steady (pid %d) still runs after stop", pid)
	}
}

// niceOf reads a process's nice value (field 19 of /proc/PID/stat).
func niceOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) may hold spaces: count after its ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	n, err := strconv.Atoi(f[16])
	if err != nil {
		t.Fatalf("stat %q: %v", b, err)
	}
	return n
}

func TestTmpfsSize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2g", "2g"}, {"512M", "512m"}, {"50%", "50%"}, {"1048576", "1048576"},
		{"", ""}, {"0", ""}, {"-1g", ""}, {"2gb", ""}, {"g", ""}, {"1,5g", ""}, {"5000%", ""}, {"2g,nr_inodes=1", ""},
	} {
		got, err := tmpfsSize(tc.in)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("tmpfsSize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func FuzzTmpfsSize(f *testing.F) {
	for _, s := range []string{"2g", "50%", "512m", "0", "1,size=9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := tmpfsSize(s)
		if err == nil && strings.ContainsAny(got, ",= \n") {
			t.Fatalf("tmpfsSize(%q) = %q passes mount options through", s, got)
		}
	})
}

func TestDepNames(t *testing.T) {
	p := filepath.Join(t.TempDir(), "modules.dep")
	os.WriteFile(p, []byte("kernel/drivers/virtio/virtio_ring.ko:\nkernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio_ring.ko\n\nkernel/drivers/i2c/algos/i2c-algo-bit.ko:\n"), 0o644)
	got, err := depNames(p)
	// Canonical names, as /proc/modules and modules.alias spell them.
	if want := "virtio_ring virtio_net i2c_algo_bit"; err != nil || strings.Join(got, " ") != want {
		t.Errorf("depNames = %q, %v; want %q", got, err, want)
	}
}

type recorder struct {
	mu   sync.Mutex
	recs []string
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, string(b))
	return len(b), nil
}

func TestKmsgWriter(t *testing.T) {
	var kmsg, console recorder
	w := &kmsgWriter{kmsg: &kmsg, console: &console}
	w.Write([]byte("two\nlines\n"))
	w.Write([]byte(strings.Repeat("x", 2000)))
	if len(kmsg.recs) != 3 {
		t.Fatalf("kmsg got %d records, want 3: %q", len(kmsg.recs), kmsg.recs)
	}
	for _, r := range kmsg.recs {
		if !strings.HasPrefix(r, "<6>beoclient: ") || !strings.HasSuffix(r, "\n") || strings.Count(r, "\n") != 1 || len(r) > 1000 {
			t.Errorf("kmsg record %q: want <6>beoclient: prefix, one line ending in a newline, < 1000 bytes", r)
		}
	}
	if len(console.recs) != 2 {
		t.Errorf("console got %d writes, want the 2 records", len(console.recs))
	}
}

func TestConsoleShowsInfo(t *testing.T) {
	for _, tc := range []struct {
		printk string
		want   bool
	}{
		{"7\t4\t1\t7\n", true}, {"4\t4\t1\t7\n", false}, {"", false}, {"x", false},
	} {
		proc := t.TempDir()
		os.MkdirAll(filepath.Join(proc, "sys/kernel"), 0o755)
		os.WriteFile(filepath.Join(proc, "sys/kernel/printk"), []byte(tc.printk), 0o644)
		if got := consoleShowsInfo(proc); got != tc.want {
			t.Errorf("printk %q: got %v, want %v", tc.printk, got, tc.want)
		}
	}
}

// archive builds a newc archive from records.
func archive(t testing.TB, recs ...cpio.Record) []byte {
	var b bytes.Buffer
	w := cpio.Newc.Writer(&b)
	if err := cpio.WriteRecords(w, recs); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestUnpack(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.WriteFile(filepath.Join(root, "bin/beo"), []byte("me"), 0o755)
	os.WriteFile(filepath.Join(root, "old"), []byte("old"), 0o644)
	b := archive(t,
		cpio.Directory(".", 0o755),
		cpio.Symlink("lib", "usr/lib"),
		cpio.Directory("usr", 0o755),
		cpio.Directory("usr/lib", 0o755),
		cpio.Symlink("usr/lib/libfoo.so.1", "libfoo.so.1.2"),
		cpio.StaticFile("usr/lib/libfoo.so.1.2", "foo", 0o755),
		cpio.Directory("etc/beowulf/keys", 0o700),
		cpio.StaticFile("etc/beowulf/keys/node.key", "secret", 0o600),
		cpio.Directory("tmp", 0o1777),
		cpio.StaticFile("old", "new", 0o644),
	)
	n, err := unpack(b, root, []string{"/bin/beo"})
	if err != nil || n != 9 {
		t.Fatalf("unpack = %d, %v; want 9 members", n, err)
	}
	for _, tc := range []struct {
		path    string
		mode    os.FileMode
		content string
	}{
		{"lib", os.ModeSymlink | 0o777, ""},
		{"usr/lib/libfoo.so.1.2", 0o755, "foo"},
		{"lib/libfoo.so.1", 0o755, "foo"}, // through both links
		{"etc/beowulf/keys", os.ModeDir | 0o700, ""},
		{"etc/beowulf/keys/node.key", 0o600, "secret"},
		{"tmp", os.ModeDir | os.ModeSticky | 0o777, ""},
		{"old", 0o644, "new"},
	} {
		p := filepath.Join(root, tc.path)
		fi, err := os.Lstat(p)
		if tc.path == "lib/libfoo.so.1" {
			fi, err = os.Stat(p)
		}
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		if fi.Mode() != tc.mode {
			t.Errorf("%s: mode %v, want %v", tc.path, fi.Mode(), tc.mode)
		}
		if tc.content != "" {
			if b, _ := os.ReadFile(p); string(b) != tc.content {
				t.Errorf("%s: %q, want %q", tc.path, b, tc.content)
			}
		}
	}
	for _, bad := range []struct {
		name string
		rec  cpio.Record
		want string
	}{
		{"replace the binary", cpio.StaticFile("bin/beo", "evil", 0o755), "would replace /bin/beo"},
	} {
		if _, err := unpack(archive(t, bad.rec), root, []string{"/bin/beo"}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want an error with %q", bad.name, err, bad.want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "bin/beo")); string(b) != "me" {
		t.Errorf("/bin/beo = %q after a refused archive", b)
	}
	if _, err := unpack([]byte("070701garbage"), root, nil); err == nil {
		t.Error("garbage archive: no error")
	}
}

// FuzzUnpack: whatever the archive, nothing is written outside root.
func FuzzUnpack(f *testing.F) {
	f.Add(archive(f, cpio.StaticFile("a/b", "x", 0o644), cpio.Symlink("l", "/etc")))
	f.Add(archive(f, cpio.StaticFile("../escape", "x", 0o644)))
	f.Add(archive(f, cpio.Symlink("up", ".."), cpio.StaticFile("up/escape", "x", 0o644)))
	f.Add(archive(f, cpio.Symlink("d", "../nowhere"), cpio.StaticFile("d/x/escape", "x", 0o644)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		outer := t.TempDir()
		root := filepath.Join(outer, "root")
		os.Mkdir(root, 0o755)
		unpack(b, root, nil)
		ents, _ := os.ReadDir(outer)
		if len(ents) != 1 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Fatalf("archive wrote outside its root: %q", names)
		}
	})
}

// TestSlaveMasters: bpslave is given the master that booted the node
// first (its primary), then the node's other masters in order.
func TestSlaveMasters(t *testing.T) {
	p := bootparam.Defaults()
	p.Master = netip.MustParseAddr("10.99.0.2")
	for _, tc := range []struct{ masters, want string }{
		{"", "10.99.0.2:933"},
		{"10.99.0.1,10.99.0.2", "10.99.0.2:933,10.99.0.1:933"},
		{"10.99.0.2,10.99.0.3,10.99.0.1", "10.99.0.2:933,10.99.0.3:933,10.99.0.1:933"},
	} {
		p.Masters = tc.masters
		var args []string
		for _, s := range DefaultServices() {
			if s.Name == "bpslave" {
				args = s.Args(p)
			}
		}
		if len(args) < 2 || args[0] != "-m" || args[1] != tc.want {
			t.Errorf("beo.masters=%q: bpslave %q, want -m %s", tc.masters, args, tc.want)
		}
	}
}
