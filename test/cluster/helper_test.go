package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/sim"
	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/beo-cluster/beo/test/testio"
	"github.com/hashicorp/yamux"
)

// helperEnv makes the test binary a helper instead of running tests; the
// tests start it as another user (see helper).
const helperEnv = "BEO_CLUSTER_HELPER"

// helper runs one helper role and returns the exit status:
//
//	snoop SOCKET NODE PID MAXID: as a user who does not own NODE:PID, try to
//	attach to the stdout and stderr of every exec id up to MAXID and to
//	signal the process; print "LEAK ..." for every byte or success.
//	put SOCKET NODE DST SRC...: Client.PutFiles of the SRCs to NODE:DST,
//	the master reading them (no check here first, unlike bpcp); print
//	"ok" or "err: " and the error.
//	hold SOCKET N: see helpHold.
//	rfork N: see helpRfork (run on a node).
func helper(role string) int {
	args := strings.Fields(role)
	if len(args) == 2 && args[0] == "rfork" {
		n, _ := strconv.Atoi(args[1])
		return helpRfork(n)
	}
	if len(args) == 3 && args[0] == "hold" {
		n, _ := strconv.Atoi(args[2])
		return helpHold(args[1], n)
	}
	if len(args) >= 5 && args[0] == "put" {
		return helpPut(args[1], args[2], args[3], args[4:])
	}
	if len(args) != 5 || args[0] != "snoop" {
		fmt.Fprintf(os.Stderr, "helper: bad role %q\n", role)
		return 2
	}
	sock := args[1]
	node, _ := strconv.Atoi(args[2])
	pid, _ := strconv.Atoi(args[3])
	maxID, _ := strconv.Atoi(args[4])
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := bproc.Dial(ctx, sock)
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	defer cl.Close()
	if err := cl.Kill(ctx, node, pid, int(syscall.SIGKILL)); err == nil {
		fmt.Println("LEAK: signalled another user's process")
	} else {
		fmt.Println("kill refused:", err)
	}
	// Raw attach streams: the bproc API never lets one ask for another's id.
	conn, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	sess, err := yamux.Client(conn, nil)
	if err != nil {
		fmt.Println("session:", err)
		return 1
	}
	defer sess.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for id := 1; id <= maxID; id++ {
		for fd := 0; fd < 3; fd++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, err := sess.OpenStream()
				if err != nil {
					return
				}
				defer st.Close()
				wire.Write(st, wire.Header{Op: wire.OpAttach, Attach: &wire.Attach{ID: uint64(id), FD: fd}})
				if fd == 0 {
					st.Write([]byte("injected\n"))
					return
				}
				st.SetReadDeadline(time.Now().Add(2 * time.Second))
				b := make([]byte, 256)
				if n, _ := st.Read(b); n > 0 {
					mu.Lock()
					fmt.Printf("LEAK: id %d fd %d: %q\n", id, fd, b[:n])
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return 0
}

func helpPut(sock, node, dst string, srcs []string) int {
	n, _ := strconv.Atoi(node)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := bproc.Dial(ctx, sock)
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	defer cl.Close()
	if err := cl.PutFiles(ctx, bproc.File{Node: n, Path: dst, Sources: srcs}); err != nil {
		fmt.Println("err:", err)
		return 0
	}
	fmt.Println("ok")
	return 0
}

// client dials c's master for the test.
func client(t *testing.T, c *sim.Cluster) *bproc.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := bproc.Dial(ctx, c.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// status returns node n's state.
func status(t *testing.T, c *sim.Cluster, n int) bproc.NodeInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := bproc.Dial(ctx, c.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n < 0 || n >= len(st.Nodes) {
		t.Fatalf("node %d: not in the table (%d nodes)", n, len(st.Nodes))
	}
	return st.Nodes[n]
}

// waitState polls until node n is in state, for at most d.
func waitState(t *testing.T, c *sim.Cluster, n int, state string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		cl, err := bproc.Dial(ctx, c.Socket)
		if err == nil {
			st, err := cl.Status(ctx)
			if err == nil && n < len(st.Nodes) {
				last = st.Nodes[n].State
			}
			cl.Close()
		}
		cancel()
		if last == state {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("node %d: state %q after %s, want %q", n, last, d, state)
}

// startJob starts bpsh args against c in the background, its stdout
// and stderr collected, and waits until its stdout said "ready" ready
// times. The job is killed when the test ends, if it still runs.
func startJob(ctx context.Context, t *testing.T, c *sim.Cluster, ready int, args ...string) (job *exec.Cmd, out, errb *testio.Buffer) {
	t.Helper()
	job = exec.CommandContext(ctx, "bpsh", args...)
	job.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
	out, errb = &testio.Buffer{}, &testio.Buffer{}
	job.Stdout, job.Stderr = out, errb
	if err := job.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { job.Process.Kill() })
	waitFor(t, fmt.Sprintf("%d× ready", ready), 10*time.Second, func() bool { return strings.Count(out.String(), "ready") >= ready })
	return job, out, errb
}

// waitFor polls cond until it holds, for at most d.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// junkDialer dials the node port from node 0's address (so the master
// gets as far as TLS) or the socket plainly.
func junkDialer(network string) *net.Dialer {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if network == "tcp" {
		d.LocalAddr = &net.TCPAddr{IP: sim.NodeAddr(0).AsSlice()}
	}
	return d
}

// helpRfork forks this process onto node n (bproc.Rfork) and says what
// happened: "rfork failed: ERR", "forked PID" (the original) or "copy"
// (the copy, which exits 5); the original then prints "goes on" and
// exits 0.
func helpRfork(n int) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pid, err := bproc.Rfork(ctx, n)
	switch {
	case err != nil:
		fmt.Println("rfork failed:", err)
	case pid == 0:
		fmt.Println("copy")
		return 5
	default:
		fmt.Println("forked", pid)
	}
	fmt.Println("goes on")
	return 0
}
