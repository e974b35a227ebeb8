package master

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/nodes"
)

// TestHeartbeatStall: when the master itself stalls (its clock jumps
// between two ticks: a paused VM, SIGSTOP), a node that answers every
// ping stays connected; it is not blamed for the pings the master did
// not send meanwhile. One that stays silent afterwards still goes down.
func TestHeartbeatStall(t *testing.T) {
	for _, answer := range []bool{true, false} {
		var skew atomic.Int64
		clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		dir := t.TempDir()
		keys, _ := link.EnsureMasterKeys(dir)
		nkeys, _ := link.NodeKeys(dir)
		m, err := New(Config{
			Nodes:       []NodeDef{{Num: 0, Addr: netip.MustParseAddr("127.0.0.1")}},
			PingTimeout: 200 * time.Millisecond, Keys: keys, Log: slog.New(slog.DiscardHandler),
			Clock: clock,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		nl, _ := net.Listen("tcp", "127.0.0.1:0")
		served := make(chan struct{})
		go func() { m.ServeNodes(ctx, nl); close(served) }()
		mux, hello := helloNode(ctx, t, nl.Addr().String(), nkeys)
		var quiet atomic.Bool
		answerPings(hello, quiet.Load)
		time.Sleep(300 * time.Millisecond)
		quiet.Store(!answer)
		skew.Add(int64(30 * time.Second)) // the master was away for 30 s
		time.Sleep(time.Second)           // 10 intervals
		nd, _ := m.Table().Get(0)
		if down := nd.State == nodes.Down; down == answer {
			t.Errorf("answering=%v: after the master's stall node 0 is %v", answer, nd.State)
		}
		mux.Close()
		cancel()
		<-served
	}
}
