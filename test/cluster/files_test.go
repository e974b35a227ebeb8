package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/sim"
	"golang.org/x/sys/unix"
)

// TestBpcp: -p, -r, several sources, node→node, failures naming the file
// and the node.
func TestBpcp(t *testing.T) {
	c := start(t, 2)
	node := func(n int, p string) string { return filepath.Join(c.Dir, "nodes", string(rune('0'+n)), p) }
	src := t.TempDir()
	tree := filepath.Join(src, "tree")
	for _, f := range []struct {
		path, data string
		mode       os.FileMode
	}{{"tree/a", "A", 0o640}, {"tree/sub/b", "B", 0o700}, {"one", "one", 0o604}} {
		p := filepath.Join(src, f.path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("a", filepath.Join(tree, "link"))
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	os.Chtimes(filepath.Join(src, "one"), old, old)

	// -p keeps mode and mtime; without it, mode masked by 0777 and mtime now.
	if r := run(t, c, nil, "bpcp", "-p", filepath.Join(src, "one"), "0:/kept"); r.code != 0 {
		t.Fatalf("bpcp -p: %+v", r)
	}
	if fi, err := os.Stat(node(0, "kept")); err != nil || fi.Mode().Perm() != 0o604 || !fi.ModTime().Equal(old) {
		t.Errorf("bpcp -p: got %v %v, want mode 0604 mtime %v", fi.Mode(), fi.ModTime(), old)
	}
	if r := run(t, c, nil, "bpcp", filepath.Join(src, "one"), "0:/plain"); r.code != 0 {
		t.Fatalf("bpcp: %+v", r)
	}
	if fi, err := os.Stat(node(0, "plain")); err != nil || fi.ModTime().Equal(old) {
		t.Errorf("bpcp without -p: mtime %v, want now", fi.ModTime())
	}
	// -r: a tree, then node→node, then back; directories need -r.
	if r := run(t, c, nil, "bpcp", tree, "0:/tree"); r.code == 0 || !strings.Contains(r.err, "tree") {
		t.Errorf("directory without -r: got %+v, want an error naming it", r)
	}
	if r := run(t, c, nil, "bpcp", "-r", tree, "0:/tree"); r.code != 0 {
		t.Fatalf("bpcp -r: %+v", r)
	}
	if r := run(t, c, nil, "bpcp", "-r", "0:/tree", "1:/"); r.code != 0 {
		t.Fatalf("bpcp -r node to node: %+v", r)
	}
	back := t.TempDir()
	if r := run(t, c, nil, "bpcp", "-r", "1:/tree", back); r.code != 0 {
		t.Fatalf("bpcp -r back: %+v", r)
	}
	for p, want := range map[string]string{"tree/a": "A", "tree/sub/b": "B"} {
		if b, err := os.ReadFile(filepath.Join(back, p)); string(b) != want {
			t.Errorf("%s after the round trip: got %q, %v", p, b, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(back, "tree/link")); l != "a" {
		t.Errorf("symlink after the round trip: got %q, %v", l, err)
	}
	// A relative node path is taken from the caller's directory, as bpsh
	// runs there.
	if r := runIn(t, c, "/tmp", nil, nil, "bpcp", filepath.Join(src, "one"), "0:rel"); r.code != 0 {
		t.Fatalf("bpcp to a relative node path: %+v", r)
	}
	if b, err := os.ReadFile(node(0, "tmp/rel")); string(b) != "one" {
		t.Errorf("bpcp one 0:rel from /tmp: node 0's /tmp/rel holds %q, %v", b, err)
	}
	// Several sources into a directory on a node.
	os.MkdirAll(node(1, "many"), 0o755)
	if r := run(t, c, nil, "bpcp", filepath.Join(src, "one"), "0:/kept", "1:/many"); r.code != 0 {
		t.Fatalf("several sources: %+v", r)
	}
	for _, f := range []string{"one", "kept"} {
		if _, err := os.Stat(node(1, "many/"+f)); err != nil {
			t.Errorf("several sources: %v", err)
		}
	}
	// Failures name the file and the node.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"1:/missing", back}, []string{"node 1", "/missing"}},
		{[]string{filepath.Join(src, "one"), "1:/no/such/dir/x"}, []string{"node 1", "/no/such/dir"}},
		{[]string{filepath.Join(src, "absent"), "1:/x"}, []string{"absent"}},
		{[]string{filepath.Join(src, "one"), "9:/x"}, []string{"9"}},
		{[]string{filepath.Join(src, "one"), "0-1:/x"}, []string{"one node at a time"}},
	} {
		r := run(t, c, nil, "bpcp", tc.args...)
		for _, w := range tc.want {
			if r.code == 0 || !strings.Contains(r.err, w) {
				t.Errorf("bpcp %v: got %+v, want an error containing %q", tc.args, r, w)
			}
		}
	}
}

// TestBpcpAtomic: a file being replaced is always the old one or the whole
// new one, and an interrupted copy leaves the old one and no temporary.
func TestBpcpAtomic(t *testing.T) {
	c := start(t, 1)
	target := filepath.Join(c.Dir, "nodes", "0", "big")
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "big")
	data := make([]byte, 96<<20)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cp := exec.CommandContext(ctx, "bpcp", src, "0:/big")
	cp.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
	if err := cp.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cp.Wait() }()
	seen := map[int64]bool{}
	for waiting := true; waiting; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("bpcp: %v", err)
			}
			waiting = false
		default:
			if fi, err := os.Stat(target); err == nil {
				seen[fi.Size()] = true
			} else {
				t.Errorf("target vanished during the copy: %v", err)
			}
		}
	}
	for size := range seen {
		if size != 3 && size != int64(len(data)) {
			t.Errorf("saw the target at %d bytes: neither the old (3) nor the new (%d) file", size, len(data))
		}
	}
	if b, _ := os.ReadFile(target); !bytes.Equal(b, data) {
		t.Errorf("target after the copy: %d bytes, want the new %d", len(b), len(data))
	}

	// Killed mid-copy (once its temporary exists on the node): the old file
	// stays, and the temporary goes.
	os.WriteFile(target, []byte("old"), 0o644)
	huge := filepath.Join(t.TempDir(), "huge")
	if err := os.Truncate(huge, 0); err != nil {
		f, _ := os.Create(huge)
		f.Close()
	}
	os.Truncate(huge, 4<<30) // sparse: 4 GiB to read, none to store here
	kill := exec.CommandContext(ctx, "bpcp", huge, "0:/big")
	kill.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
	if err := kill.Start(); err != nil {
		t.Fatal(err)
	}
	temps := func() int { return staged(c, 0, "", ".beo-big") }
	waitFor(t, "a temporary on the node", 20*time.Second, func() bool { return temps() > 0 })
	kill.Process.Kill()
	kill.Wait()
	waitFor(t, "no temporary left on the node", 10*time.Second, func() bool { return temps() == 0 })
	if b, _ := os.ReadFile(target); string(b) != "old" {
		t.Errorf("after an interrupted copy: got %d bytes, want the old file", len(b))
	}
}

// bpcpIO runs bpcp (with attr, which may be nil) and returns its result
// and the bytes it read and wrote through system calls (rchar, wchar of
// /proc/PID/io, read while it is a zombie): a file that passed through
// bpcp counts in both.
func bpcpIO(t *testing.T, c *sim.Cluster, attr *syscall.SysProcAttr, args ...string) (result, int64, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bpcp", args...)
	cmd.SysProcAttr = attr
	cmd.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatalf("waitid: %v", err)
	}
	stats, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", cmd.Process.Pid))
	if err != nil {
		t.Fatalf("bpcp's io counters: %v", err)
	}
	var rchar, wchar int64 = -1, -1
	for _, l := range strings.Split(string(stats), "\n") {
		k, v, _ := strings.Cut(l, ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "rchar":
			rchar = n
		case "wchar":
			wchar = n
		}
	}
	if rchar < 0 || wchar < 0 {
		t.Fatalf("bpcp's io counters: no rchar/wchar in %q", stats)
	}
	r := result{}
	if ee, ok := cmd.Wait().(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	}
	r.out, r.err = o.String(), e.String()
	return r, rchar, wchar
}

// TestBpcpMasterReads: local files copied to a node are packed by the
// master, which reads them itself: bpcp neither reads nor sends their
// bytes, and the copy is exact (-p: mode and mtime; -r: a tree with a
// symbolic link). A source with ".." takes the streamed path, which the
// counters must see, or they prove nothing.
func TestBpcpMasterReads(t *testing.T) {
	c := start(t, 1)
	node := func(p string) string { return filepath.Join(c.Dir, "nodes", "0", p) }
	src := t.TempDir()
	big := filepath.Join(src, "big")
	data := make([]byte, 24<<20+5)
	rand.Read(data)
	if err := os.WriteFile(big, data, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(big, 0o640)
	old := time.Date(2003, 4, 5, 6, 7, 8, 0, time.UTC)
	os.Chtimes(big, old, old)
	tree := filepath.Join(src, "tree")
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{{"tree/x", 0o600}, {"tree/sub/y", 0o755}} {
		p := filepath.Join(src, f.path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(f.path), f.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, f.mode)
	}
	os.Symlink("x", filepath.Join(tree, "link"))
	os.Chmod(filepath.Join(tree, "sub"), 0o750)
	const most = 1 << 20 // the header and answer are a few hundred bytes

	r, rd, wr := bpcpIO(t, c, nil, "-p", big, "0:/big")
	if r.code != 0 {
		t.Fatalf("bpcp -p: %+v", r)
	}
	if rd > most || wr > most {
		t.Errorf("bpcp -p of %d bytes: bpcp read %d and wrote %d bytes, want under %d: the file went through it", len(data), rd, wr, most)
	}
	if b, err := os.ReadFile(node("big")); !bytes.Equal(b, data) {
		t.Errorf("bpcp -p: the node has %d bytes (%v), not the file's %d", len(b), err, len(data))
	}
	if fi, err := os.Stat(node("big")); err != nil || fi.Mode() != 0o640 || !fi.ModTime().Equal(old) {
		t.Errorf("bpcp -p: got %v, want mode 0640 and mtime %v", fi, old)
	}

	r, rd, wr = bpcpIO(t, c, nil, "-r", "-p", tree, "0:/")
	if r.code != 0 {
		t.Fatalf("bpcp -r -p: %+v", r)
	}
	if rd > most || wr > most {
		t.Errorf("bpcp -r -p: bpcp read %d and wrote %d bytes, want under %d", rd, wr, most)
	}
	for p, mode := range map[string]os.FileMode{"tree/x": 0o600, "tree/sub/y": 0o755, "tree/sub": 0o750 | os.ModeDir} {
		fi, err := os.Stat(node(p))
		if err != nil || fi.Mode() != mode {
			t.Errorf("bpcp -r -p: %s: got %v, %v, want mode %v", p, fi, err, mode)
			continue
		}
		if !fi.IsDir() {
			if b, _ := os.ReadFile(node(p)); string(b) != p {
				t.Errorf("bpcp -r -p: %s holds %q", p, b)
			}
		}
	}
	if l, err := os.Readlink(node("tree/link")); l != "x" {
		t.Errorf("bpcp -r -p: tree/link: got %q, %v, want a link to x", l, err)
	}

	r, _, wr = bpcpIO(t, c, nil, src+"/tree/../big", "0:/streamed")
	if r.code != 0 {
		t.Fatalf("bpcp dir/../big: %+v", r)
	}
	if wr < int64(len(data)) {
		t.Errorf("bpcp dir/../big streams the file itself, yet wrote only %d bytes: the counters miss it", wr)
	}
	if b, _ := os.ReadFile(node("streamed")); !bytes.Equal(b, data) {
		t.Errorf("bpcp dir/../big: the node has %d bytes, want %d", len(b), len(data))
	}

	// A caller in another mount namespace may see other files: the master
	// refuses to read for it (wire.SourcesRefused) and bpcp streams them.
	if os.Getuid() != 0 {
		t.Skip("needs root for a mount namespace")
	}
	// On the node, not behind its view's back (an overlay's upper layer
	// changed while mounted is undefined: "stale file handle").
	if r := run(t, c, nil, "bpsh", "0", "rm", "/big"); r.code != 0 {
		t.Fatalf("rm /big on the node: %+v", r)
	}
	r, _, wr = bpcpIO(t, c, &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}, big, "0:/big")
	if r.code != 0 {
		t.Fatalf("bpcp from another mount namespace: %+v", r)
	}
	if wr < int64(len(data)) {
		t.Errorf("bpcp from another mount namespace wrote %d bytes: the master read a file the caller might not see", wr)
	}
	if b, _ := os.ReadFile(node("big")); !bytes.Equal(b, data) {
		t.Errorf("bpcp from another mount namespace: the node has %d bytes, want %d", len(b), len(data))
	}
}

// TestBpcpMasterReadsAsCaller: the master reads a user's sources as that
// user. Asked directly (PutFiles, with no check by the client first), it
// refuses a root-owned 0600 file with the file's "permission denied" and
// the node gets nothing; a readable file lands.
func TestBpcpMasterReadsAsCaller(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to act as another user")
	}
	c := start(t, 1)
	openUp(t, c)
	drop := filepath.Join(c.Dir, "nodes", "0", "drop")
	os.Mkdir(drop, 0o777)
	os.Chmod(drop, 0o777)
	src := t.TempDir()
	for d := src; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	open, secret := filepath.Join(src, "open"), filepath.Join(src, "secret")
	os.WriteFile(open, []byte("open"), 0o644)
	os.WriteFile(secret, []byte("secret"), 0o600)
	put := func(srcs ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		h := exec.CommandContext(ctx, beoSelf(t))
		h.SysProcAttr = &syscall.SysProcAttr{Credential: nobody}
		h.Env = append(os.Environ(), helperEnv+"=put "+c.Socket+" 0 /drop/ "+strings.Join(srcs, " "))
		out, err := h.CombinedOutput()
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if out := put(open); out != "ok" {
		t.Fatalf("PutFiles of a readable file as nobody: got %q, want ok", out)
	}
	if b, _ := os.ReadFile(filepath.Join(drop, "open")); string(b) != "open" {
		t.Errorf("PutFiles as nobody: the node has %q", b)
	}
	if out, want := put(open, secret), "err: "+secret+": permission denied"; out != want {
		t.Errorf("PutFiles of a 0600 root file as nobody: got %q, want %q", out, want)
	}
	ents, _ := os.ReadDir(drop)
	if len(ents) != 1 {
		t.Errorf("after a refused put the node's directory holds %d entries, want only open", len(ents))
	}
	if out := put("relative"); !strings.Contains(out, "relative: not an absolute, clean path") {
		t.Errorf("PutFiles of a relative path: got %q", out)
	}
	// bpcp itself checks first, and says the same.
	if r := runAs(t, c, nobody, nil, "bpcp", secret, "0:/drop/"); r.code == 0 || !strings.Contains(r.err, secret+": permission denied") {
		t.Errorf("bpcp of a 0600 root file as nobody: got %+v", r)
	}
}

// TestBpcpSourceFailsMidway: a source that vanishes, or that the user may
// no longer read, after bpcp checked it and while the master streams the
// copy fails it with the cause, naming the file; the node keeps its old
// files and no temporary. The 128 MiB (sparse) file before it keeps the
// master busy while the test breaks the second.
func TestBpcpSourceFailsMidway(t *testing.T) {
	c := start(t, 1)
	openUp(t, c)
	type breaker struct {
		name string
		cred *syscall.Credential
		act  func(string) error
		want string
	}
	cases := []breaker{{"removed", nil, os.Remove, "no such file or directory"}}
	if os.Getuid() == 0 {
		cases = append(cases, breaker{"unreadable", nobody, func(p string) error { return os.Chmod(p, 0o600) }, "permission denied"})
	} else {
		t.Log("not root: skipping the unreadable case")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			for d := src; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
				os.Chmod(d, 0o755)
			}
			tree := filepath.Join(src, "tree")
			os.Mkdir(tree, 0o755)
			a, b := filepath.Join(tree, "a"), filepath.Join(tree, "b")
			if f, err := os.Create(a); err == nil {
				f.Close()
			}
			if err := os.Truncate(a, 128<<20); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(b, []byte("new b"), 0o644)
			dst := filepath.Join(c.Dir, "nodes", "0", tc.name)
			os.MkdirAll(filepath.Join(dst, "tree"), 0o777)
			os.Chmod(dst, 0o777)
			os.Chmod(filepath.Join(dst, "tree"), 0o777)
			// Files the copy may replace: writable by its user, as cp
			// would need them (pkg/xfer).
			for f, data := range map[string]string{"tree/a": "old a", "tree/b": "old b"} {
				os.WriteFile(filepath.Join(dst, f), []byte(data), 0o666)
				os.Chmod(filepath.Join(dst, f), 0o666)
			}
			temps := func() int { return staged(c, 0, filepath.Join(tc.name, "tree"), ".beo-") }

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cp := exec.CommandContext(ctx, "bpcp", "-r", tree, "0:/"+tc.name)
			cp.SysProcAttr = &syscall.SysProcAttr{Credential: tc.cred}
			cp.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
			var e bytes.Buffer
			cp.Stderr = &e
			if err := cp.Start(); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(20 * time.Second); temps() == 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					cp.Process.Kill()
					cp.Wait()
					t.Fatalf("no temporary on the node after 20s; bpcp: %s", e.String())
				}
			}
			if err := tc.act(b); err != nil {
				t.Fatal(err)
			}
			err := cp.Wait()
			if want := b + ": " + tc.want; err == nil || !strings.Contains(e.String(), want) {
				t.Errorf("bpcp: got %v, %q; want a failure saying %q", err, e.String(), want)
			}
			for f, want := range map[string]string{"a": "old a", "b": "old b"} {
				if got, _ := os.ReadFile(filepath.Join(dst, "tree", f)); string(got) != want {
					t.Errorf("after the failed copy the node's tree/%s holds %d bytes, want %q", f, len(got), want)
				}
			}
			waitFor(t, "no temporary left on the node", 10*time.Second, func() bool { return temps() == 0 })
		})
	}
}

// TestPutFilesCancel: cancelling PutFiles' context stops the copy on the
// master, not just the call: the node drops its temporary and keeps the
// old file, and the client goes on working.
func TestPutFilesCancel(t *testing.T) {
	c := start(t, 1)
	target := filepath.Join(c.Dir, "nodes", "0", "huge")
	os.WriteFile(target, []byte("old"), 0o644)
	huge := filepath.Join(t.TempDir(), "huge")
	if f, err := os.Create(huge); err == nil {
		f.Close()
	}
	if err := os.Truncate(huge, 4<<30); err != nil { // sparse: 4 GiB to read, none stored here
		t.Fatal(err)
	}
	cl := client(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cl.PutFiles(ctx, bproc.File{Node: 0, Path: "/huge", Sources: []string{huge}}) }()
	temps := func() int { return staged(c, 0, "", ".beo-huge") }
	waitFor(t, "a temporary on the node", 20*time.Second, func() bool { return temps() > 0 })
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a cancelled PutFiles reported success")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("PutFiles did not return 10s after its context was cancelled")
	}
	waitFor(t, "no temporary left on the node", 10*time.Second, func() bool { return temps() == 0 })
	if b, _ := os.ReadFile(target); string(b) != "old" {
		t.Errorf("after a cancelled copy: got %d bytes, want the old file", len(b))
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if _, err := cl.States(sctx); err != nil {
		t.Errorf("the client after a cancelled PutFiles: %v", err)
	}
}

// staged counts the copies being received into directory rel of node n:
// its entries whose names start with prefix (a copy's temporaries:
// ".beo-NAME-…"), and the files without a name open there (pkg/xfer
// receives a file's data unnamed, O_TMPFILE, where the filesystem
// allows: /proc/PID/fd shows it as "DIR/#INODE (deleted)", DIR the
// node's directory or, as root, its view: sim.ViewDirs) in any process
// this test may look into.
func staged(c *sim.Cluster, n int, rel, prefix string) int {
	upper := filepath.Join(c.Dir, "nodes", strconv.Itoa(n))
	view, _ := sim.ViewDirs(upper)
	dirs := []string{filepath.Join(upper, rel), filepath.Join(view, rel)}
	count := 0
	ents, _ := os.ReadDir(dirs[0])
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			count++
		}
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		l, err := os.Readlink(fd)
		if err != nil || !strings.HasSuffix(l, " (deleted)") {
			continue
		}
		for _, d := range dirs {
			if strings.HasPrefix(l, d+"/#") {
				count++
			}
		}
	}
	return count
}

// TestSimNodeView: a simulated node's jobs see what bpcp put on that
// node, and only that node does; the host's own path stays untouched.
func TestSimNodeView(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("node views need root (a mount namespace per node)")
	}
	c := start(t, 2)
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("on node 1\n"), 0o644)
	dst := fmt.Sprintf("/tmp/beo-view-%d", os.Getpid())
	if r := run(t, c, nil, "bpcp", src, "1:"+dst); r.code != 0 {
		t.Fatalf("bpcp: %+v", r)
	}
	if r := run(t, c, nil, "bpsh", "1", "cat", dst); r.out != "on node 1\n" || r.code != 0 {
		t.Errorf("bpsh 1 cat %s: %+v, want what bpcp wrote", dst, r)
	}
	if r := run(t, c, nil, "bpsh", "0", "cat", dst); r.code == 0 {
		t.Errorf("node 0 sees node 1's file: %+v", r)
	}
	if _, err := os.Stat(dst); err == nil {
		os.Remove(dst)
		t.Errorf("the copy landed on the host's %s", dst)
	}
	if b, err := os.ReadFile(filepath.Join(c.Dir, "nodes", "1", dst)); err != nil || string(b) != "on node 1\n" {
		t.Errorf("node 1's directory: %q, %v", b, err)
	}
	// A job's own files stay on its node too.
	if r := run(t, c, nil, "bpsh", "0", "sh", "-c", "echo made > "+dst+"; cat "+dst); r.out != "made\n" {
		t.Errorf("a job writing on node 0: %+v", r)
	}
	if r := run(t, c, nil, "bpsh", "1", "cat", dst); r.out != "on node 1\n" {
		t.Errorf("node 1 after node 0 wrote the same path: %+v", r)
	}
}
