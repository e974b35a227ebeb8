package boot

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// TestMasterOrder: this server is 10.99.0.1. Node 0's masters are
// 10.99.0.1 then 10.99.0.2 (answered, and told both); node 1's are
// 10.99.0.2 then 10.99.0.1 (answered only while 10.99.0.2 is down, and
// noted as booting either way); node 2's are 10.99.0.3 alone (never
// answered).
func TestMasterOrder(t *testing.T) {
	s, dir := testServer(t, baseConfig+"masterorder 0 10.99.0.1 10.99.0.2\nmasterorder 1 10.99.0.2 10.99.0.1\nmasterorder 2-3 10.99.0.3\n")
	other := netip.MustParseAddr("10.99.0.2")
	up := true
	var asked []netip.Addr
	s.o.MasterUp = func(a netip.Addr) bool { asked = append(asked, a); return up }
	var booting []int
	s.o.OnBoot = func(n int) { booting = append(booting, n) }
	mac2 := mustMAC("52:54:00:00:00:03")
	answered := func(hw net.HardwareAddr) bool {
		resp, _ := s.Answer(packet(t, hw, pxe(iana.INTEL_X86PC)))
		return resp != nil && resp.MessageType() == dhcpv4.MessageTypeOffer
	}

	if !answered(mac0) || len(asked) != 0 {
		t.Errorf("node 0, whose first master this is: answered %v, asked about %v; want answered, nobody asked", answered(mac0), asked)
	}
	if answered(mac1) {
		t.Error("node 1 answered while its first master is up")
	}
	// Both are network-booting: node 0 answered here, node 1 by its first master.
	if len(asked) != 1 || asked[0] != other || len(booting) != 2 || booting[0] != 0 || booting[1] != 1 {
		t.Errorf("node 1: asked about %v, booting %v; want [10.99.0.2], [0 1]", asked, booting)
	}
	up = false
	if !answered(mac1) {
		t.Error("node 1 not answered with its first master down")
	}
	if answered(mac2) {
		t.Error("node 2, not this master's, answered")
	}
	log, _ := os.ReadFile(filepath.Join(dir, "log", "node.1"))
	for _, want := range []string{"not answered: master 10.99.0.2, before this one in its masterorder, is up",
		"every master before this one in its masterorder ([10.99.0.2]) is down; answering"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("node.1 lacks %q:\n%s", want, log)
		}
	}
	if log, _ := os.ReadFile(filepath.Join(dir, "log", "node.2")); !strings.Contains(string(log), "masterorder gives node 2 the masters [10.99.0.3], not this one (10.99.0.1)") {
		t.Errorf("node.2 does not say why it was not answered:\n%s", log)
	}

	// The node's command line names its masters when it has several.
	cfg := s.Config()
	for n, want := range map[int]string{0: "beo.masters=10.99.0.1,10.99.0.2", 1: "beo.masters=10.99.0.2,10.99.0.1"} {
		spec, _ := cfg.Node(n)
		if got := s.Cmdline(cfg, spec); !strings.Contains(got, want) {
			t.Errorf("node %d command line %q lacks %q", n, got, want)
		}
	}
	spec, _ := cfg.Node(2)
	if got := s.Cmdline(cfg, spec); strings.Contains(got, "beo.masters=") {
		t.Errorf("node 2, one master: command line %q names masters", got)
	}
}

// TestMasterProbe: the default MasterUp dials the master's bpmaster
// port, one answer stands for masterUpFor, and requests that come while
// a dial runs share it.
func TestMasterProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(l.Addr().String())
	var p masterProbe
	now := time.Now()
	if !p.up(ap, now) {
		t.Fatal("a listening master: want up")
	}
	l.Close()
	if !p.up(ap, now.Add(masterUpFor/2)) {
		t.Error("within masterUpFor: want the remembered answer, up")
	}
	if p.up(ap, now.Add(masterUpFor)) {
		t.Error("after masterUpFor, nothing listening: want down")
	}

	// A master whose host is dead: each dial takes its full timeout. A
	// hundred requests at once (a DHCP flood) make one dial.
	var dials atomic.Int32
	dead := masterProbe{dial: func(string) error {
		dials.Add(1)
		time.Sleep(200 * time.Millisecond)
		return errors.New("i/o timeout")
	}}
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if dead.up(ap, now) {
				t.Error("a dead master: want down")
			}
		}()
	}
	wg.Wait()
	if n := dials.Load(); n != 1 {
		t.Errorf("100 requests at once dialed %d times; want them to share one dial", n)
	}
}
