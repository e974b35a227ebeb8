package master

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/beo-cluster/beo/test/testio"
	"github.com/hashicorp/yamux"
)

// wait bounds every blocking step of these tests.
const wait = 10 * time.Second

// fakeNode is a node whose exec behaviour the test scripts: it runs no
// process, it answers the master's streams as Argv[1] says.
type fakeNode struct {
	t       *testing.T
	mux     *yamux.Session
	attachs atomic.Int64 // OpAttach streams the master opened
	lastID  atomic.Uint64
	// shown gets a value when the client has the first output of a
	// "rogue" exec: its stream was taken, so a second one is a duplicate
	// (the master takes each stream on its own goroutine).
	shown chan struct{}
	sock  string // the master's client socket
	m     *Master
	acct  string        // the master's accounting log
	going chan struct{} // a "usage" exec ends when it gets a value
}

// startFake runs a master with one node (0, on 127.0.0.1) and a fake node
// connected to it; it returns a client of the master, the node, and the
// master's log.
func startFake(t *testing.T) (*bproc.Client, *fakeNode, *testio.Buffer) {
	t.Helper()
	dir := t.TempDir()
	keys, err := link.EnsureMasterKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	nkeys, err := link.NodeKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testio.Buffer{}
	m, err := New(Config{
		Nodes:       []NodeDef{{Num: 0, Addr: netip.MustParseAddr("127.0.0.1")}},
		PingTimeout: time.Minute, Keys: keys, Accounting: filepath.Join(dir, "accounting"),
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "master.sock")
	cl, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(2)
	go func() { defer wg.Done(); m.ServeNodes(ctx, nl) }()
	go func() { defer wg.Done(); m.ServeClients(ctx, cl) }()

	dctx, dcancel := context.WithTimeout(ctx, wait)
	defer dcancel()
	mux, err := link.Dial(dctx, &net.Dialer{}, nl.Addr().String(), nkeys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mux.Close() })
	hello, err := mux.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	var reply wire.HelloReply
	if err := wire.Write(hello, wire.Header{Op: wire.OpHello, Hello: &wire.Hello{Version: wire.Version, Node: 0}}); err != nil {
		t.Fatal(err)
	}
	if err := wire.Read(hello, &reply); err != nil || reply.Err != "" {
		t.Fatalf("hello: %+v, %v", reply, err)
	}
	n := &fakeNode{t: t, mux: mux, shown: make(chan struct{}, 1), sock: sock, m: m,
		acct: filepath.Join(dir, "accounting"), going: make(chan struct{})}
	go func() { // pongs
		for {
			var p wire.Ping
			if wire.Read(hello, &p) != nil || wire.Write(hello, wire.Pong(p)) != nil {
				return
			}
		}
	}()
	go n.serve()

	c, err := bproc.Dial(dctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for { // node_up is unset: the node is up at once
		st, err := c.Status(dctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Nodes) == 1 && st.Nodes[0].State == "up" {
			break
		}
		if dctx.Err() != nil {
			t.Fatalf("node not up: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return c, n, logs
}

func (n *fakeNode) serve() {
	for {
		st, err := n.mux.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			defer st.Close()
			st.SetDeadline(time.Now().Add(wait))
			var h wire.Header
			if err := wire.Read(st, &h); err != nil {
				return
			}
			switch {
			case h.Op == wire.OpAttach:
				n.attachs.Add(1)
				io.Copy(io.Discard, st) // stdin, or (eager) output streams nobody writes
			case h.Op == wire.OpExec && h.Exec != nil:
				n.exec(st, h.Exec)
			}
		}()
	}
}

// open opens a node stream with header h.
func (n *fakeNode) open(h wire.Header) net.Conn {
	st, err := n.mux.OpenStream()
	if err != nil {
		n.t.Errorf("open: %v", err)
		return nil
	}
	st.SetDeadline(time.Now().Add(wait))
	if err := wire.Write(st, h); err != nil {
		n.t.Errorf("write header: %v", err)
	}
	return st
}

func attach(id uint64, fd int) wire.Header {
	return wire.Header{Op: wire.OpAttach, Attach: &wire.Attach{ID: id, FD: fd}}
}

// refused reports whether the master closes st (having read it) without
// sending anything.
func refused(st net.Conn) bool {
	b, err := io.ReadAll(st)
	return len(b) == 0 && err == nil
}

// exec plays a process: Argv[1] "silent" prints nothing, "out" prints
// "hello" on stdout and exits 3, "rogue" also tries every stream the
// master must refuse, "usage" reports two usage readings (usageReadings)
// and, once n.going has a value, ends with status 2 and its final usage.
func (n *fakeNode) exec(st net.Conn, ex *wire.Exec) {
	if err := wire.Write(st, wire.Need{Hashes: []string{}}); err != nil {
		return
	}
	if err := wire.Write(st, wire.Started{PID: 4242}); err != nil {
		return
	}
	res := wire.Result{}
	switch ex.Argv[1] {
	case "usage":
		u := usageReadings()
		for i := range u[:2] {
			wire.Write(st, wire.Event{Update: &wire.Update{Usage: &u[i]}})
		}
		select {
		case <-n.going:
		case <-time.After(wait):
		}
		res = wire.Result{Status: 2, Usage: &u[2]}
	case "out":
		o := n.open(attach(ex.ID, 1))
		o.Write([]byte("hello"))
		o.Close()
		res = wire.Result{Status: 3, Opened: wire.OpenedStdout}
	case "rogue":
		if prev := n.lastID.Load(); prev != 0 {
			if o := n.open(attach(prev, 2)); !refused(o) {
				n.t.Error("an output stream of a finished exec was taken")
			}
		}
		for _, h := range []wire.Header{
			attach(ex.ID+1000, 1), // no such exec
			attach(ex.ID, 0),      // stdin is the master's to open
			attach(ex.ID, 3),
			{Op: wire.OpExec, Exec: &wire.Exec{ID: ex.ID, Path: "/bin/true", Argv: []string{"true"}}},
		} {
			if o := n.open(h); !refused(o) {
				n.t.Errorf("node stream %+v (attach %+v) was not refused", h.Op, h.Attach)
			}
		}
		o := n.open(attach(ex.ID, 1))
		o.Write([]byte("one"))
		select {
		case <-n.shown:
		case <-time.After(wait):
			n.t.Error("the first output of the rogue exec did not reach the client")
		}
		if dup := n.open(attach(ex.ID, 1)); !refused(dup) {
			n.t.Error("a second stdout stream for one exec was not refused")
		}
		o.Close()
		res = wire.Result{Opened: wire.OpenedStdout}
	}
	n.lastID.Store(ex.ID)
	wire.Write(st, res)
}

// TestNodeOutputStreams: the master opens no output streams towards the
// node (wire Version 3: the node opens them when output comes), relays
// the ones the node opens before the exit status, and refuses every
// other stream a node opens while the session keeps serving. With the
// old eager master a silent job costs two OpAttach streams.
func TestNodeOutputStreams(t *testing.T) {
	c, n, logs := startFake(t)
	run := func(what string) (string, error) {
		var out bytes.Buffer
		select { // from an earlier run
		case <-n.shown:
		default:
		}
		cmd := c.Command(0, "/bin/true", what)
		cmd.Stdout = testio.SignalWriter{W: &out, C: n.shown}
		err := cmd.Run()
		return out.String(), err
	}

	if out, err := run("silent"); out != "" || err != nil {
		t.Errorf("silent: got %q, %v", out, err)
	}
	if got := n.attachs.Load(); got != 0 {
		t.Errorf("a silent job made the master open %d OpAttach streams to the node, want 0", got)
	}

	out, err := run("out")
	var ee *bproc.ExitError
	if out != "hello" || !errors.As(err, &ee) || ee.Status != 3 {
		t.Errorf("out: got %q, %v; want \"hello\", exit status 3", out, err)
	}

	before := strings.Count(logs.String(), "refused node stream")
	if out, err := run("rogue"); out != "one" || err != nil {
		t.Errorf("rogue: got %q, %v; want \"one\"", out, err)
	}
	if got := strings.Count(logs.String(), "refused node stream") - before; got != 6 {
		t.Errorf("refusals logged: got %d, want 6\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("refusals not logged at warn:\n%s", logs.String())
	}
	// Still serving.
	if out, err := run("out"); out != "hello" || !errors.As(err, &ee) {
		t.Errorf("after the refusals: got %q, %v", out, err)
	}
	if got := n.attachs.Load(); got != 0 {
		t.Errorf("the master opened %d OpAttach streams to the node, want 0", got)
	}
}

// TestClientOutputStreams: on the client hop too the output streams are
// opened by the side with the output, only when it comes (wire Version
// 4). It counts the streams opened each way on the socket (every yamux
// frame with SYN), through a proxy: a silent job costs only its exec
// stream, output costs one stream the master opens, stdin one the client
// opens. With the old eager client, which opened both output streams
// itself, the silent job costs three.
func TestClientOutputStreams(t *testing.T) {
	_, n, _ := startFake(t)
	proxy := filepath.Join(t.TempDir(), "proxy.sock")
	ln, err := net.Listen("unix", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var up, down atomic.Int64 // streams opened by the client, by the master
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m, err := net.Dial("unix", n.sock)
			if err != nil {
				c.Close()
				continue
			}
			go countSYN(m, c, &up)
			go countSYN(c, m, &down)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := bproc.Dial(ctx, proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		what, stdin string
		up, down    int64
		out         string
	}{
		{"silent", "", 1, 0, ""},
		{"out", "", 1, 1, "hello"},
		{"silent", "in", 2, 0, ""},
		{"silent", "", 1, 0, ""},
	} {
		up.Store(0)
		down.Store(0)
		var out bytes.Buffer
		cmd := c.Command(0, "/bin/true", tc.what)
		cmd.Stdout = &out
		if tc.stdin != "" {
			cmd.Stdin = strings.NewReader(tc.stdin)
		}
		cmd.Run() // every stream of the job is opened before its Result
		if u, d := up.Load(), down.Load(); u != tc.up || d != tc.down || out.String() != tc.out {
			t.Errorf("%s (stdin %q): %d streams opened by the client, %d by the master, output %q; want %d, %d, %q",
				tc.what, tc.stdin, u, d, out.String(), tc.up, tc.down, tc.out)
		}
	}
}

// countSYN copies yamux frames from src to dst and counts those opening
// a stream (flag SYN).
func countSYN(dst, src net.Conn, n *atomic.Int64) {
	defer dst.Close()
	var h [12]byte // version, type, flags, stream id, length
	for {
		if _, err := io.ReadFull(src, h[:]); err != nil {
			return
		}
		if h[3]&1 != 0 { // flags, big-endian; SYN = 1
			n.Add(1)
		}
		if _, err := dst.Write(h[:]); err != nil {
			return
		}
		if h[1] == 0 { // a data frame: length bytes follow
			if _, err := io.CopyN(dst, src, int64(h[8])<<24|int64(h[9])<<16|int64(h[10])<<8|int64(h[11])); err != nil {
				return
			}
		}
	}
}
