package nfs

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/test/testio"
)

// TestGanesha runs the real nfs-ganesha through a Service on 127.0.0.1
// (this host's kernel has no NFS client, so the test speaks NFSv4 itself:
// PUTROOTFH and LOOKUP through the pseudo file system): the export an
// fstab asks for is served, a path the master lacks is not, a line added
// to a node's file later is served after Mounts reloads ganesha, and
// ganesha is gone when Serve returns.
func TestGanesha(t *testing.T) {
	if _, err := exec.LookPath("ganesha.nfsd"); err != nil {
		t.Skip("needs ganesha.nfsd (Debian nfs-ganesha nfs-ganesha-vfs)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (ganesha's VFS FSAL opens files by handle)")
	}
	dir := t.TempDir()
	home, data := filepath.Join(dir, "home"), filepath.Join(dir, "data")
	os.Mkdir(home, 0o755)
	os.Mkdir(data, 0o755)
	base := filepath.Join(dir, "fstab")
	os.WriteFile(base, []byte(fmt.Sprintf("$MASTER:%s /home nfs rw\n$MASTER:%s/missing /x nfs ro,nonfatal\n", home, dir)), 0o644)
	port := freePort(t)
	logs := &testio.Buffer{}
	lo := netip.MustParseAddr("127.0.0.1")
	s, err := New(Options{Fstab: base, Master: lo, Kind: Ganesha, RunDir: filepath.Join(dir, "run"), Port: port,
		Clients: func() []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} },
		Log:     slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { s.Serve(ctx); close(served) }()
	defer func() {
		cancel()
		<-served
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "run", "ganesha.log"))
			t.Logf("beo log:\n%s\nganesha log:\n%s", logs, b)
		}
	}()
	start := time.Now()
	ms, notes, err := s.Mounts(0, netip.MustParseAddr("127.0.0.2"))
	if err != nil || len(ms) != 2 {
		t.Fatalf("Mounts: %v %+v", err, ms)
	}
	t.Logf("ganesha serving %v after Serve started", time.Since(start).Round(time.Millisecond))
	if len(notes) != 1 || !strings.Contains(notes[0], dir+"/missing: no such directory") {
		t.Errorf("notes %q, want one on the missing directory", notes)
	}
	addr := net.JoinHostPort(lo.String(), fmt.Sprint(port))
	for p, want := range map[string]uint32{home: 0, dir + "/missing": nfs4errNoEnt, data: nfs4errNoEnt} {
		if got, err := lookup(addr, p); err != nil || got != want {
			t.Errorf("LOOKUP %s: status %d %v, want %d", p, got, err, want)
		}
	}
	// Node 1 gets its own file naming another path: served after Mounts.
	os.WriteFile(base+".1", []byte(fmt.Sprintf("$MASTER:%s /data nfs ro\n", data)), 0o644)
	if _, notes, err := s.Mounts(1, netip.MustParseAddr("127.0.0.3")); err != nil || len(notes) != 0 {
		t.Fatalf("Mounts(1): %v %q", err, notes)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := lookup(addr, data)
		if err == nil && got == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("LOOKUP %s after the reload: status %d %v, want 0", data, got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, err := lookup(addr, home); err != nil || got != 0 {
		t.Errorf("LOOKUP %s after the reload: %d %v", home, got, err)
	}
	pid, err := os.ReadFile(filepath.Join(dir, "run", "ganesha.pid"))
	if err != nil {
		t.Fatal(err)
	}
	var p int
	fmt.Sscan(string(pid), &p)
	cancel()
	<-served
	if err := syscall.Kill(p, 0); err == nil {
		t.Errorf("ganesha (pid %d) still runs after Serve returned", p)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "run", "ganesha.log")); bytes.Contains(b, []byte(":CONFIG :CRIT")) {
		t.Errorf("ganesha's log has config errors:\n%s", b)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

const nfs4errNoEnt = 2

// lookup sends one NFSv4.0 COMPOUND {PUTROOTFH, LOOKUP each component of
// p} as root (AUTH_SYS) and returns its status: 0 when p is in the
// server's pseudo file system.
func lookup(addr, p string) (uint32, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var b bytes.Buffer
	u := func(v uint32) { binary.Write(&b, binary.BigEndian, v) }
	opaque := func(s string) {
		u(uint32(len(s)))
		b.WriteString(s)
		for range (4 - len(s)%4) % 4 {
			b.WriteByte(0)
		}
	}
	u(0x62656f31) // xid
	u(0)          // CALL
	u(2)          // RPC version
	u(100003)     // NFS
	u(4)          // version 4
	u(1)          // COMPOUND
	u(1)          // AUTH_SYS
	var cred bytes.Buffer
	binary.Write(&cred, binary.BigEndian, []uint32{0, 4}) // stamp, machine name "node"
	cred.WriteString("node")
	binary.Write(&cred, binary.BigEndian, []uint32{0, 0, 0}) // uid, gid, no groups
	opaque(cred.String())
	u(0) // verifier: AUTH_NONE
	u(0)
	opaque("") // tag
	u(0)       // minor version 0
	parts := strings.Split(strings.Trim(p, "/"), "/")
	u(uint32(1 + len(parts)))
	u(24) // PUTROOTFH
	for _, part := range parts {
		u(15) // LOOKUP
		opaque(part)
	}
	rec := make([]byte, 4)
	binary.BigEndian.PutUint32(rec, 0x80000000|uint32(b.Len()))
	if _, err := c.Write(append(rec, b.Bytes()...)); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(c, rec); err != nil {
		return 0, err
	}
	reply := make([]byte, binary.BigEndian.Uint32(rec)&0x7fffffff)
	if _, err := io.ReadFull(c, reply); err != nil {
		return 0, err
	}
	// xid, REPLY, MSG_ACCEPTED, verifier (flavor, length, body), accept status, COMPOUND status
	if len(reply) < 24 {
		return 0, fmt.Errorf("short reply (%d bytes)", len(reply))
	}
	word := func(i int) uint32 { return binary.BigEndian.Uint32(reply[i:]) }
	if word(4) != 1 || word(8) != 0 {
		return 0, fmt.Errorf("RPC not accepted: %x", reply)
	}
	off := 16 + int(word(16)+3)&^3 + 4
	if len(reply) < off+8 {
		return 0, fmt.Errorf("short reply (%d bytes)", len(reply))
	}
	if st := word(off); st != 0 {
		return 0, fmt.Errorf("RPC accept status %d", st)
	}
	return word(off + 4), nil
}
