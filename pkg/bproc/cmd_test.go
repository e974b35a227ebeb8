package bproc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/beo-cluster/beo/test/testio"
	"github.com/hashicorp/yamux"
)

// wait bounds every blocking step of these tests.
const wait = 10 * time.Second

// fakeMaster answers a client's execs as the command's Argv[1] says.
type fakeMaster struct {
	t     *testing.T
	mux   *yamux.Session
	shown chan struct{} // the client wrote the first output of "rogue"
	mu    sync.Mutex
	ended []uint64 // exec ids whose Result was sent
	// ghost (ghosts_test.go): the frames the client sent, and when to end.
	frames  chan wire.Signal
	proceed chan struct{}
	adopted chan struct{} // fork_test.go: the client adopted the copy
	kidGone chan struct{} // ghosts_test.go: report the second child gone
}

// startFake runs a fake master and returns a client of it.
func startFake(t *testing.T) (*Client, *fakeMaster) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "master.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	m := &fakeMaster{t: t, shown: make(chan struct{}, 1), frames: make(chan wire.Signal, 8), proceed: make(chan struct{}), adopted: make(chan struct{}), kidGone: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		m.mux, _ = yamux.Server(c, link.MuxConfig())
		close(ready)
		for {
			st, err := m.mux.AcceptStream()
			if err != nil {
				return
			}
			go m.serve(st)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	<-ready
	t.Cleanup(func() { m.mux.Close() })
	return c, m
}

func (m *fakeMaster) serve(st net.Conn) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(wait))
	var h wire.Header
	if err := wire.Read(st, &h); err != nil {
		return
	}
	if h.Op != wire.OpRun || h.Exec == nil {
		io.Copy(io.Discard, st)
		return
	}
	id := h.Exec.ID
	if h.Exec.Fork == forkID {
		m.copied(st, h.Exec)
		return
	}
	switch h.Exec.Argv[1] {
	case "old", "new": // a master of another wire Version
		v := wire.Version - 1
		if h.Exec.Argv[1] == "new" {
			v = wire.Version + 1
		}
		if h.Exec.Version != wire.Version {
			v = -1 // the client did not say its own
		}
		wire.Write(st, wire.Result{Err: "another version", Code: wire.CodeVersion, Version: v})
		return
	case "ghost":
		m.ghosts(st)
	case "fork":
		m.fork(st, h.Exec)
	case "missing":
		wire.Write(st, wire.Started{PID: 1})
		wire.Write(st, wire.Result{Opened: wire.OpenedStderr})
	case "rogue":
		wire.Write(st, wire.Started{PID: 1})
		m.mu.Lock()
		ended := append([]uint64(nil), m.ended...)
		m.mu.Unlock()
		hs := []wire.Header{
			attach(id+1000, 1), // no such exec
			attach(id, 0),      // stdin is the client's to open
			attach(id, 3),
			{Op: wire.OpStatus},
		}
		for _, e := range ended {
			hs = append(hs, attach(e, 2)) // finished
		}
		for _, h := range hs {
			o := m.open(h)
			o.Write([]byte("injected"))
			if !refused(o) {
				m.t.Errorf("stream %+v (attach %+v) was not refused", h.Op, h.Attach)
			}
		}
		o := m.open(attach(id, 1))
		o.Write([]byte("one"))
		select {
		case <-m.shown: // taken: the next one is a duplicate
		case <-time.After(wait):
			m.t.Error("the first output did not reach Stdout")
		}
		if dup := m.open(attach(id, 1)); !refused(dup) {
			m.t.Error("a second stdout stream for one exec was not refused")
		}
		o.Close()
		wire.Write(st, wire.Result{Status: 0, Opened: wire.OpenedStdout})
	}
	m.mu.Lock()
	m.ended = append(m.ended, id)
	m.mu.Unlock()
}

func (m *fakeMaster) open(h wire.Header) net.Conn {
	st, err := m.mux.OpenStream()
	if err != nil {
		m.t.Errorf("open: %v", err)
		return nil
	}
	st.SetDeadline(time.Now().Add(wait))
	wire.Write(st, h)
	return st
}

func attach(id uint64, fd int) wire.Header {
	return wire.Header{Op: wire.OpAttach, Attach: &wire.Attach{ID: id, FD: fd}}
}

// refused reports whether the client closes st without sending anything.
func refused(st net.Conn) bool {
	b, err := io.ReadAll(st)
	return len(b) == 0 && err == nil
}

// TestOutputStreamsRefused: the client takes only what its master may
// open (wire Version 4): an output stream (FD 1 or 2) of an exec it
// started and that has not finished, each once. Nothing written on any
// other stream reaches the output, and the client goes on.
func TestOutputStreamsRefused(t *testing.T) {
	c, m := startFake(t)
	for i := range 3 {
		var out, errb bytes.Buffer
		cmd := c.Command(0, "/bin/true", "rogue")
		cmd.Stdout, cmd.Stderr = testio.SignalWriter{W: &out, C: m.shown}, &errb
		if err := cmd.Run(); err != nil || out.String() != "one" || errb.Len() != 0 {
			t.Errorf("round %d: got %v, stdout %q, stderr %q; want stdout \"one\"", i, err, out.String(), errb.String())
		}
		select {
		case <-m.shown:
		default:
		}
	}
	if n := c.outs.Len(); n != 0 {
		t.Errorf("%d execs still registered after Wait", n)
	}
}

// TestOutputMissing: a stream the Result names that never comes fails
// the command after a bounded wait, instead of hanging or losing output
// silently.
func TestOutputMissing(t *testing.T) {
	c, _ := startFake(t)
	c.outputWait = 100 * time.Millisecond
	start := time.Now()
	err := c.Command(0, "/bin/true", "missing").Run()
	if !errors.Is(err, link.ErrOutputMissing) || time.Since(start) > wait/2 {
		t.Errorf("got %v after %v; want %v at once", err, time.Since(start), link.ErrOutputMissing)
	}
}

// TestVersionSkew: a master of another wire Version is a clear error,
// not a wait, that says which side is older (from the Version fields,
// not from the message).
func TestVersionSkew(t *testing.T) {
	c, _ := startFake(t)
	for _, tt := range []struct {
		master string
		want   error
		text   string
	}{
		{"old", ErrMasterTooOld, "restart bpmaster"},
		{"new", ErrClientTooOld, "use the bpsh/bproc of the master's build"},
	} {
		err := c.Command(0, "/bin/true", tt.master).Run()
		var ne *NodeError
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) || !errors.As(err, &ne) || ne.Code != CodeVersion || ne.Node != 0 {
			t.Errorf("%s master: got %v; want %v", tt.master, err, tt.want)
		}
	}
}
