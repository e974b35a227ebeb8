package cluster

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/master"
	"github.com/beo-cluster/beo/pkg/sim"
	"github.com/beo-cluster/beo/test/testio"
	"golang.org/x/sys/unix"
)

// helpHold is the helper role "hold SOCKET N": hold N client connections
// (each having asked one question), print "held", then try one more and
// print its error as "more: ERR"; keep all of them until stdin closes.
func helpHold(sock string, n int) int {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var held []*bproc.Client
	for i := 0; i < n; i++ {
		c, err := bproc.Dial(ctx, sock)
		if err == nil {
			_, err = c.States(ctx)
		}
		if err != nil {
			fmt.Printf("connection %d: %v\n", i, err)
			return 1
		}
		held = append(held, c)
	}
	fmt.Println("held")
	c, err := bproc.Dial(ctx, sock)
	if err == nil {
		_, err = c.States(ctx)
	}
	fmt.Printf("more: %v\n", err)
	bufio.NewReader(os.Stdin).ReadString('\n')
	for _, c := range held {
		c.Close()
	}
	return 0
}

// TestConnectionCapPerUID: a user holding the cap of connections is
// refused more with a message naming the cap; root and the other users
// are still served, and the user is served again once it lets go.
func TestConnectionCapPerUID(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to act as another user")
	}
	c := start(t, 1)
	openUp(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h := exec.CommandContext(ctx, beoSelf(t))
	h.Env = append(os.Environ(), helperEnv+"=hold "+c.Socket+" "+strconv.Itoa(master.DefaultConnsPerUID))
	h.SysProcAttr = &syscall.SysProcAttr{Credential: nobody}
	stdin, _ := h.StdinPipe()
	out := &testio.Buffer{}
	h.Stdout, h.Stderr = out, out
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	defer h.Wait()
	defer stdin.Close()
	for !strings.Contains(out.String(), "more:") {
		if ctx.Err() != nil || h.ProcessState != nil {
			t.Fatalf("helper did not finish holding: %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := fmt.Sprintf("more: bpmaster refused the connection: too many connections for uid 65534 (%d)", master.DefaultConnsPerUID)
	if !strings.Contains(out.String(), want) {
		t.Errorf("helper: got %q, want %q", out.String(), want)
	}
	if r := runAs(t, c, nobody, nil, "bpstat"); r.code == 0 || !strings.Contains(r.err, "too many connections for uid 65534") {
		t.Errorf("bpstat as the capped user: got %+v, want the refusal", r)
	}
	if r := run(t, c, nil, "bpsh", "0", "echo", "root"); r.out != "root\n" || r.code != 0 {
		t.Errorf("root while a user is capped: got %+v", r)
	}
	daemon := &syscall.Credential{Uid: 1, Gid: 1}
	if r := runAs(t, c, daemon, nil, "bpsh", "0", "id", "-u"); r.out != "1\n" || r.code != 0 {
		t.Errorf("another user while one is capped: got %+v", r)
	}
	stdin.Close()
	if err := h.Wait(); err != nil {
		t.Fatalf("helper: %v: %s", err, out.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := runAs(t, c, nobody, nil, "bpsh", "0", "id", "-u")
		if r.out == "65534\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the user is not served after letting go: %+v", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMasterOutlivesEMFILE runs bpmaster with a small descriptor limit
// and exhausts it with idle connections: accept fails with EMFILE, the
// master backs off instead of exiting, and serves again once the
// connections are gone.
func TestMasterOutlivesEMFILE(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	if err := os.WriteFile(cfg, []byte(sim.Config(1, 1, 20*time.Second)), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "bpmaster.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := exec.CommandContext(ctx, beoBin, "bpmaster", "-config", cfg, "-listen", "127.0.0.1:0", "-socket", sock,
		"-keys", filepath.Join(dir, "keys"), "-logdir", filepath.Join(dir, "log"), "-node-up", "/nonexistent", "-libs", filepath.Join(dir, "libraries"))
	log := &testio.Buffer{}
	m.Stderr = log
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { m.Process.Kill(); m.Wait() }()
	bpstat := func() result { return run(t, &sim.Cluster{Socket: sock}, nil, "bpstat") }
	for bpstat().code != 0 {
		if ctx.Err() != nil {
			t.Fatalf("bpmaster did not start: %s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", m.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	lim := uint64(len(fds) + 8)
	if err := unix.Prlimit(m.Process.Pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: lim, Max: lim}, nil); err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for i := 0; i < 32; i++ {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	for !strings.Contains(log.String(), "accept failed; backing off") {
		if ctx.Err() != nil {
			t.Fatalf("no EMFILE seen; log:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "too many open files") {
		t.Errorf("the backoff was not for EMFILE:\n%s", log.String())
	}
	for _, c := range conns {
		c.Close()
	}
	var r result
	for r = bpstat(); r.code != 0; r = bpstat() {
		if ctx.Err() != nil {
			t.Fatalf("bpmaster does not serve after the descriptors came back: %+v\n%s", r, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if m.ProcessState != nil {
		t.Fatalf("bpmaster exited: %s", log.String())
	}
}

// TestJunkIsThrottled: 2 000 connections of junk to the client socket
// write a handful of warnings, not one each, and the master still serves.
func TestJunkIsThrottled(t *testing.T) {
	log := &testio.Buffer{}
	c := startWith(t, sim.Options{Nodes: 1, Log: slog.New(slog.NewTextHandler(log, nil))}, 1)
	for i := 0; i < 2000; i++ {
		conn, err := net.Dial("unix", c.Socket)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		fmt.Fprintf(conn, "GET /%d HTTP/1.0\r\n\r\n", i*7919)
		conn.Close()
	}
	if r := run(t, c, nil, "bpsh", "0", "echo", "ok"); r.out != "ok\n" {
		t.Fatalf("after the junk: %+v", r)
	}
	warns := strings.Count(log.String(), "level=WARN")
	if warns > 20 {
		t.Errorf("2000 junk connections wrote %d warnings:\n%.2000s", warns, log.String())
	}
	if warns == 0 {
		t.Errorf("the junk was not reported at all")
	}
}
