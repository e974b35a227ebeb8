package boot

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// TestTFTPFlood: read requests that are never acknowledged hold at most
// maxTFTPPerPeer transfers per client address and maxTFTP in all; the
// rest are refused with a TFTP error at once.
func TestTFTPFlood(t *testing.T) {
	s, _ := testServer(t, "nodes 4\niprange 10.99.0.100 10.99.0.103\n")
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serveTFTP(ctx, conn) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("serveTFTP did not return")
		}
	}()
	server := conn.LocalAddr().(*net.UDPAddr)
	rrq := append([]byte{0, 1}, []byte("undionly.kpxe\x00octet\x00")...)

	// peers clients at 127.0.0.2…, each sending perPeer requests from
	// sockets of their own, one after another (a burst would overflow
	// the server's socket buffer); returns how many got data and how
	// many an error.
	flood := func(first, peers, perPeer int) (data, refused int) {
		buf := make([]byte, 2048)
		for p := range peers {
			ip := net.IPv4(127, 0, byte(first+p)/250, 2+byte(first+p)%250)
			for range perPeer {
				c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				if _, err := c.WriteToUDP(rrq, server); err != nil {
					t.Fatal(err)
				}
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				n, from, err := c.ReadFromUDP(buf)
				if err != nil || n < 2 {
					t.Fatalf("no answer from the server: %v", err)
				}
				switch op := binary.BigEndian.Uint16(buf); op {
				case 3: // DATA: a transfer holds a slot
					data++
					t.Cleanup(func() { c.WriteToUDP([]byte("\x00\x05\x00\x00done\x00"), from) }) // the client aborts
				case 5: // ERROR
					refused++
				default:
					t.Fatalf("opcode %d", op)
				}
			}
		}
		return data, refused
	}

	if data, refused := flood(0, 1, 3*maxTFTPPerPeer); data != maxTFTPPerPeer || refused != 2*maxTFTPPerPeer {
		t.Errorf("one client, %d requests: %d transfers, %d refused; want %d and %d", 3*maxTFTPPerPeer, data, refused, maxTFTPPerPeer, 2*maxTFTPPerPeer)
	}
	peers := (maxTFTP-maxTFTPPerPeer)/maxTFTPPerPeer + 10
	want := maxTFTP - maxTFTPPerPeer
	if data, refused := flood(1, peers, maxTFTPPerPeer); data != want || refused != peers*maxTFTPPerPeer-want {
		t.Errorf("%d more clients: %d transfers, %d refused; want %d in flight in all", peers, data, refused, maxTFTP)
	}
}

// TestHTTPPerAddr: one address gets maxHTTPPerAddr boot HTTP
// connections at once; the next is closed unanswered, and another
// address is still served.
func TestHTTPPerAddr(t *testing.T) {
	s, _ := testServer(t, "nodes 4\niprange 10.99.0.100 10.99.0.103\n")
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serveHTTP(ctx, ln) }()
	defer func() { cancel(); <-done }()
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// get asks for the kernel on c and reports whether an answer came.
	get := func(c net.Conn) bool {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET /boot/kernel HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return false
		}
		b := make([]byte, 12)
		n, _ := io.ReadFull(c, b)
		return n == 12 && string(b) == "HTTP/1.1 200"
	}
	for i := range maxHTTPPerAddr {
		if c := dial("127.0.0.1"); !get(c) {
			t.Fatalf("connection %d from 127.0.0.1 not answered", i+1)
		}
	}
	if get(dial("127.0.0.1")) {
		t.Errorf("connection %d from 127.0.0.1 answered", maxHTTPPerAddr+1)
	}
	if !get(dial("127.0.0.2")) {
		t.Error("127.0.0.2 not answered")
	}
}
