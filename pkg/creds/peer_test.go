package creds_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/creds"
	"golang.org/x/sys/unix"
)

// peerChild is the child side of TestPeer: it connects to the socket
// named in its environment and waits there until the test is done.
func peerChild(path string) {
	c, err := net.Dial("unix", path)
	if err != nil {
		os.Exit(3)
	}
	var b [1]byte
	c.Read(b[:])
	os.Exit(0)
}

// TestPeer: Peer reports the peer's uid, gid, pid and supplementary
// groups — this process's own, and (as root) a child's with another
// gid and other groups.
func TestPeer(t *testing.T) {
	if p := os.Getenv("BEO_CREDS_PEER_CHILD"); p != "" {
		peerChild(p)
	}
	path := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	check := func(name string, uid, gid uint32, pid int, groups []uint32) {
		t.Helper()
		l.(*net.UnixListener).SetDeadline(time.Now().Add(30 * time.Second))
		c, err := l.Accept()
		if err != nil {
			t.Fatalf("%s: accept: %v", name, err)
		}
		defer c.Close()
		cr, gotPID, err := creds.Peer(c)
		if err != nil {
			t.Fatalf("%s: Peer: %v", name, err)
		}
		got := slices.Sorted(slices.Values(cr.Groups))
		want := slices.Sorted(slices.Values(groups))
		if cr.UID != uid || cr.GID != gid || gotPID != pid || !slices.Equal(got, want) {
			t.Errorf("%s: Peer = %+v pid %d; want uid %d gid %d groups %v pid %d", name, cr, gotPID, uid, gid, want, pid)
		}
	}

	own, err := unix.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	var ownGroups []uint32
	for _, g := range own {
		ownGroups = append(ownGroups, uint32(g))
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	check("this process", uint32(os.Getuid()), uint32(os.Getgid()), os.Getpid(), ownGroups)

	if os.Geteuid() != 0 {
		t.Skip("needs root for a peer with other groups")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPeer$")
	cmd.Env = append(os.Environ(), "BEO_CREDS_PEER_CHILD="+path)
	groups := []uint32{100, 4242, 65534}
	// Still uid 0, so that it may run this test binary from its 0700
	// directory; another gid and other groups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: 4242, Groups: groups}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	check("a child with other groups", 0, 4242, cmd.Process.Pid, groups)
}
