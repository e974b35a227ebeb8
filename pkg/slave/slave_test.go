package slave

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/hashicorp/yamux"
)

// wait bounds every blocking step of these tests.
const wait = 10 * time.Second

// steady is the ping interval of tests that are not about the heartbeat.
// The slave drops a session after three intervals without a ping, and a
// loaded CI machine running the race detector has stalled this test
// process for over half a second (CI once dropped a session 600 ms into
// an 8 MiB copy): an interval that a stall cannot outlast keeps those
// tests about what they test.
const steady = 2 * time.Second

const testNode = 3

// fakeMaster accepts slaves like bpmaster does: TLS, hello, pings.
type fakeMaster struct {
	t        *testing.T
	ln       net.Listener
	keys     link.Keys
	keyDir   string
	interval time.Duration
	refuse   atomic.Value // string: HelloReply.Err for the next hellos
	hellos   atomic.Int64
	sessions chan *conn
}

// conn is one slave session as the master sees it.
type conn struct {
	t      *testing.T
	mux    *yamux.Session
	hello  wire.Hello
	pings  atomic.Bool // false stops the pings
	pongs  atomic.Int64
	closed chan struct{}

	omu     sync.Mutex
	remotes map[uint64]*remote // execs in flight, for the output streams
	outputs atomic.Int64       // output streams the slave opened
}

func newMaster(t *testing.T, interval time.Duration) *fakeMaster {
	t.Helper()
	return newMasterKeys(t, interval, t.TempDir())
}

// newMasterKeys is newMaster with the master key in dir (made there if
// missing): the masters of one cluster share theirs.
func newMasterKeys(t *testing.T, interval time.Duration, dir string) *fakeMaster {
	t.Helper()
	keys, err := link.EnsureMasterKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &fakeMaster{t: t, ln: ln, keys: keys, keyDir: dir, interval: interval, sessions: make(chan *conn, 16)}
	m.refuse.Store("")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var all []*conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if s := m.handshake(c); s != nil {
					mu.Lock()
					all = append(all, s)
					mu.Unlock()
					m.sessions <- s
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, s := range all {
			s.mux.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return m
}

func (m *fakeMaster) handshake(c net.Conn) *conn {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	mux, _, err := link.Accept(ctx, c, m.keys, nil)
	if err != nil {
		c.Close()
		return nil
	}
	st, err := mux.AcceptStream()
	if err != nil {
		mux.Close()
		return nil
	}
	st.SetDeadline(time.Now().Add(wait))
	var h wire.Header
	if err := wire.Read(st, &h); err != nil || h.Op != wire.OpHello || h.Hello == nil {
		m.t.Errorf("hello: got %+v, %v", h, err)
		mux.Close()
		return nil
	}
	m.hellos.Add(1)
	reply := wire.HelloReply{Node: testNode, PingInterval: m.interval, Err: m.refuse.Load().(string)}
	if err := wire.Write(st, reply); err != nil || reply.Err != "" {
		st.Close()
		time.AfterFunc(time.Second, func() { mux.Close() })
		return nil
	}
	st.SetDeadline(time.Time{})
	s := &conn{t: m.t, mux: mux, hello: *h.Hello, closed: make(chan struct{}), remotes: map[uint64]*remote{}}
	s.pings.Store(true)
	go s.acceptOutputs()
	go func() { // pongs
		for {
			var p wire.Pong
			if wire.Read(st, &p) != nil {
				close(s.closed)
				return
			}
			s.pongs.Add(1)
		}
	}()
	go func() { // pings
		t := time.NewTicker(m.interval)
		defer t.Stop()
		for seq := uint64(1); ; seq++ {
			select {
			case <-s.closed:
				return
			case <-t.C:
			}
			if s.pings.Load() && wire.Write(st, wire.Ping{Seq: seq}) != nil {
				return
			}
		}
	}()
	return s
}

// next waits for the next accepted session.
func (m *fakeMaster) next(t *testing.T) *conn {
	t.Helper()
	select {
	case s := <-m.sessions:
		return s
	case <-time.After(wait):
		t.Fatal("no slave session within", wait)
		return nil
	}
}

// startSlave runs a slave against m and returns its root directory.
// Options adjust its Config.
func startSlave(t *testing.T, m *fakeMaster, opts ...func(*Config)) (root string) {
	t.Helper()
	root = t.TempDir()
	keys, err := link.NodeKeys(m.keyDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := Config{
		Masters: []string{m.ln.Addr().String()}, Keys: keys, Node: -1, Root: root,
		CacheDir: filepath.Join(t.TempDir(), "cache"), Build: "test",
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	go func() { done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			t.Errorf("Run did not return within %s of cancel", wait)
		}
	})
	return root
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(b, "\n"))
	return len(b), nil
}

// closure is the files a test exec sends: the program only (its libraries
// resolve on the host by absolute path).
type closure struct {
	refs  []wire.FileRef
	reals map[string]string // hash → file
}

func program(t *testing.T, paths ...string) closure {
	t.Helper()
	c := closure{reals: map[string]string{}}
	for _, p := range paths {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Skipf("%s: %v", p, err)
		}
		b, err := os.ReadFile(real)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		h := hex.EncodeToString(sum[:])
		c.refs = append(c.refs, wire.FileRef{Path: p, Hash: h, Size: int64(len(b)), Mode: 0o755})
		c.reals[h] = real
	}
	return c
}

// acceptOutputs takes the output streams the slave opens (OpAttach FD 1
// or 2 of an exec in flight, once each); anything else fails the test.
func (s *conn) acceptOutputs() {
	for {
		st, err := s.mux.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			st.SetDeadline(time.Now().Add(wait))
			var h wire.Header
			if err := wire.Read(st, &h); err != nil || h.Op != wire.OpAttach || h.Attach == nil || h.Attach.FD < 1 || h.Attach.FD > 2 {
				s.t.Errorf("slave opened a stream that is no output stream: %+v, %v", h, err)
				st.Close()
				return
			}
			s.outputs.Add(1)
			s.omu.Lock()
			r := s.remotes[h.Attach.ID]
			s.omu.Unlock()
			if r == nil {
				s.t.Errorf("slave opened fd %d of unknown exec %d", h.Attach.FD, h.Attach.ID)
				st.Close()
				return
			}
			select {
			case r.outs[h.Attach.FD-1] <- st:
			default:
				s.t.Errorf("slave opened fd %d of exec %d twice", h.Attach.FD, h.Attach.ID)
				st.Close()
			}
		}()
	}
}

// remote is one exec as the master drives it.
type remote struct {
	st      net.Conn
	need    []string
	pid     int
	err     string // the failure before the start (failed)
	stdout  bytes.Buffer
	stderr  bytes.Buffer
	copies  sync.WaitGroup
	stdin   net.Conn
	outs    [2]chan net.Conn // the output streams the slave opened
	none    [2]chan struct{} // closed: the Result says that fd had no stream
	opened  uint8            // Result.Opened
	usage   *wire.Usage      // Result.Usage
	updates []wire.Update    // before the Result
}

// copyOut collects the output of fd 1 or 2, from the stream the slave
// opens for it (none: nothing).
func (r *remote) copyOut(fd int) {
	buf := &r.stdout
	if fd == 2 {
		buf = &r.stderr
	}
	r.copies.Add(1)
	go func() {
		defer r.copies.Done()
		select {
		case c := <-r.outs[fd-1]:
			io.Copy(buf, c)
			c.Close()
		case <-r.none[fd-1]:
		}
	}()
}

type execOpts struct {
	stdin       string
	attachFirst bool            // open the stdin stream before the exec stream
	noRead      bool            // do not read stdout until drain is called
	stdinGate   <-chan struct{} // send stdin once this is closed
}

var nextID atomic.Uint64

// start runs ex on the slave behind s, sending files from c.
func (s *conn) start(t *testing.T, ex wire.Exec, c closure, o execOpts) *remote {
	t.Helper()
	ex.ID = nextID.Add(1)
	ex.Node = testNode
	ex.Files = c.refs
	if ex.Path == "" {
		ex.Path = c.refs[0].Path
	}
	if ex.Cred.UID == 0 && os.Geteuid() != 0 { // a test that does not care: run as the slave's user
		ex.Cred = wire.Cred{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	}
	r := &remote{}
	for i := range 2 {
		r.outs[i] = make(chan net.Conn, 1)
		r.none[i] = make(chan struct{})
	}
	if !ex.NoIO {
		s.omu.Lock()
		s.remotes[ex.ID] = r
		s.omu.Unlock()
	}
	attach := func() { // stdin: the only stream the master opens
		if !ex.NoStdin {
			r.stdin = s.open(t, wire.Header{Op: wire.OpAttach, Attach: &wire.Attach{ID: ex.ID, FD: 0}})
		}
	}
	if !ex.NoIO && o.attachFirst {
		attach()
	}
	r.st = s.open(t, wire.Header{Op: wire.OpExec, Exec: &ex})
	var need wire.Need
	if err := wire.Read(r.st, &need); err != nil {
		t.Fatalf("read Need: %v", err)
	}
	r.need = need.Hashes
	for _, h := range need.Hashes {
		b, err := os.ReadFile(c.reals[h])
		if err != nil {
			t.Fatalf("slave asked for %s: %v", h, err)
		}
		if err := wire.Write(r.st, wire.FileHeader{Hash: h, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.st.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if !ex.NoIO {
		if !o.attachFirst {
			attach()
		}
		if r.stdin != nil {
			go func() {
				if o.stdinGate != nil {
					<-o.stdinGate
				}
				io.Copy(r.stdin, strings.NewReader(o.stdin))
				r.stdin.Close()
			}()
		}
		for fd := 1; fd < 3; fd++ {
			if fd == 1 && o.noRead {
				continue // the test calls copyOut(1) when it is ready
			}
			r.copyOut(fd)
		}
	}
	var st wire.ExecReply
	if err := wire.Read(r.st, &st); err != nil {
		t.Fatalf("read Started: %v", err)
	}
	r.pid, r.err = st.PID, failed(st.Result)
	return r
}

// failed is the failure res reports as the slave's Go error reads
// ("node 3: …"), or "".
func failed(res wire.Result) string {
	if err := res.Failure(); err != nil {
		return err.Error()
	}
	return ""
}

// wait reads the exec stream up to the Result, as the master does
// (wire.Event: Update frames, in r.updates, then the Result), and waits
// for the output of the streams the Result names; it returns the Result
// without Opened (in r.opened) and Usage (in r.usage).
func (r *remote) wait(t *testing.T) wire.Result {
	t.Helper()
	var res wire.Result
	for {
		var ev wire.Event
		if err := wire.Read(r.st, &ev); err != nil {
			t.Fatalf("read Result: %v", err)
		}
		if ev.Result != nil {
			res = *ev.Result
			break
		}
		if ev.Update == nil {
			t.Fatalf("exec stream: a frame that is neither Update nor Result")
		}
		r.updates = append(r.updates, *ev.Update)
	}
	for fd := 1; fd < 3; fd++ {
		if res.Opened&wire.OpenedFD(fd) == 0 {
			close(r.none[fd-1])
		}
	}
	copied := make(chan struct{})
	go func() { r.copies.Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(wait):
		t.Fatalf("output streams named by %+v did not end within %s", res, wait)
	}
	r.st.Close()
	r.opened, res.Opened = res.Opened, 0
	r.usage, res.Usage = res.Usage, nil
	return res
}

// until reads Update frames (into r.updates) until one reports a change
// for which want holds; the Result coming first fails the test.
// procs are the process changes of the Updates read so far, in order.
func (r *remote) procs() []wire.ProcChange {
	var out []wire.ProcChange
	for _, u := range r.updates {
		out = append(out, u.Procs...)
	}
	return out
}

func (r *remote) until(t *testing.T, what string, want func(wire.ProcChange) bool) {
	t.Helper()
	for {
		var ev wire.Event
		if err := wire.Read(r.st, &ev); err != nil || ev.Update == nil {
			t.Fatalf("waiting for an Update (%s): got %+v, %v", what, ev.Result, err)
		}
		r.updates = append(r.updates, *ev.Update)
		if slices.ContainsFunc(ev.Update.Procs, want) {
			return
		}
	}
}

func (r *remote) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := wire.Write(r.st, wire.Signal{Sig: int(sig)}); err != nil {
		t.Fatal(err)
	}
}

// open starts a stream with header h, every operation on it bounded.
func (s *conn) open(t *testing.T, h wire.Header) net.Conn {
	t.Helper()
	st, err := s.mux.OpenStream()
	if err != nil {
		t.Fatalf("open %s: %v", h.Op, err)
	}
	st.SetDeadline(time.Now().Add(wait))
	if err := wire.Write(st, h); err != nil {
		t.Fatalf("send %s: %v", h.Op, err)
	}
	return st
}
