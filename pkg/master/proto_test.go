package master

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"testing"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/hashicorp/yamux"
)

// TestClientSkew: a client exec of another wire Version, or an op the
// master does not know, is answered CodeVersion with the master's
// Version, before anything runs.
func TestClientSkew(t *testing.T) {
	_, n, _ := startFake(t)
	conn, err := net.Dial("unix", n.sock)
	if err != nil {
		t.Fatal(err)
	}
	mux, err := yamux.Client(conn, link.MuxConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	for _, h := range []wire.Header{
		{Op: wire.OpRun, Exec: &wire.Exec{ID: 1, Node: 0, Path: "/bin/true", Argv: []string{"true"}, NoStdin: true}}, // Version 4: none
		{Op: wire.OpRun, Exec: &wire.Exec{Version: wire.Version + 1, ID: 2, Node: 0, Path: "/bin/true", Argv: []string{"true"}, NoStdin: true}},
		{Op: wire.OpExec, Exec: &wire.Exec{ID: 3, Node: 0, Path: "/bin/true", Argv: []string{"true"}}},
		{Op: "bogus"},
	} {
		st, err := mux.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		var r wire.Result
		if err := wire.Write(st, h); err != nil {
			t.Fatal(err)
		}
		if err := wire.Read(st, &r); err != nil || r.Code != wire.CodeVersion || r.Version != wire.Version || r.Err == "" {
			t.Errorf("%s (version %v): got %+v, %v; want CodeVersion and Version %d", h.Op, h.Exec, r, err, wire.Version)
		}
		st.Close()
	}
}

// TestExecFailureFields: a refused exec reports its node and kind as
// fields, which pkg/bproc keeps.
func TestExecFailureFields(t *testing.T) {
	c, _, _ := startFake(t)
	err := c.Command(7, "/bin/true").Run()
	var ne *bproc.NodeError
	if !errors.As(err, &ne) || ne.Node != 7 || ne.Code != bproc.CodeNotFound || ne.Msg != "no such node" || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("exec on a node not in the table: got %#v", err)
	}
	ctx := context.Background()
	if err := c.Kill(ctx, 0, 12345, 9); !errors.As(err, &ne) || ne.Node != 0 || ne.Code != bproc.CodeNotFound {
		t.Errorf("kill of no such process: got %#v", err)
	}
}
