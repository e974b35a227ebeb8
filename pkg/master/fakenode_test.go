package master

import (
	"context"
	"net"
	"testing"

	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/hashicorp/yamux"
)

// helloNode connects a fake node 0 to the master listening at addr and
// says hello; the session is closed when the test ends.
func helloNode(ctx context.Context, t *testing.T, addr string, keys link.Keys) (*yamux.Session, net.Conn) {
	t.Helper()
	mux, err := link.Dial(ctx, &net.Dialer{}, addr, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mux.Close() })
	hello, err := mux.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	var reply wire.HelloReply
	wire.Write(hello, wire.Header{Op: wire.OpHello, Hello: &wire.Hello{Version: wire.Version, Node: 0}})
	if err := wire.Read(hello, &reply); err != nil || reply.Err != "" {
		t.Fatalf("hello: %+v %v", reply, err)
	}
	return mux, hello
}

// answerPings answers the master's pings on hello, as bpslave does,
// while mute (nil: never) says not to, until the stream ends.
func answerPings(hello net.Conn, mute func() bool) {
	go func() {
		for {
			var p wire.Ping
			if wire.Read(hello, &p) != nil {
				return
			}
			if mute != nil && mute() {
				continue
			}
			//lint:ignore S1016 a Pong answers a Ping; it is not a converted one
			if wire.Write(hello, wire.Pong{Seq: p.Seq}) != nil {
				return
			}
		}
	}()
}
