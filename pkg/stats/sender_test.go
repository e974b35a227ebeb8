package stats

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestSenderEveryMaster: a node with several masters sends each sample
// to every one; one master being away (ECONNREFUSED) does not stop the
// others getting theirs.
func TestSenderEveryMaster(t *testing.T) {
	var conns []net.Conn
	var listeners []net.PacketConn
	for range 2 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		listeners = append(listeners, pc)
	}
	gone, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone.Close() // nothing listens there: writes fail once ICMP says so
	for _, a := range []net.Addr{listeners[0].LocalAddr(), gone.LocalAddr(), listeners[1].LocalAddr()} {
		c, err := net.DialUDP("udp4", nil, a.(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	snd := Sender{Collector: Collector{Proc: "testdata/proc", Root: "."}, Claim: 1, Interval: 20 * time.Millisecond}
	go snd.Serve(ctx, conns...)
	for i, pc := range listeners {
		for range 3 { // past the first ECONNREFUSED from the gone one
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, MaxSize)
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				t.Fatalf("master %d: %v", i, err)
			}
			var s Sample
			if err := s.Decode(buf[:n]); err != nil || s.Claim != 1 {
				t.Fatalf("master %d: sample %+v, %v", i, s, err)
			}
		}
	}
}
