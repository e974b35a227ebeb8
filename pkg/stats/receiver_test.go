package stats

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/nodes"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// resolve127 maps 127.0.0.10+N to node N for N < 4, like an iprange
// 127.0.0.10 127.0.0.13.
func resolve127(a netip.Addr) (int, bool) {
	b := a.As4()
	if !a.Is4() || b[0] != 127 || b[1] != 0 || b[2] != 0 || b[3] < 10 || b[3] > 13 {
		return 0, false
	}
	return int(b[3]) - 10, true
}

func nodeAddr(n int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, byte(10 + n)}) }

func encode(t testing.TB, s Sample) []byte {
	t.Helper()
	b, err := s.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newTestReceiver(t *testing.T) (*Receiver, *nodes.Table, *fakeClock) {
	t.Helper()
	clk := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var ns []nodes.Node
	for n := range 4 {
		ns = append(ns, nodes.Node{Num: n, Addr: nodeAddr(n)})
	}
	tab := nodes.New(clk.Now, ns...)
	r, err := NewReceiver(Config{Resolve: resolve127, Table: tab, Clock: clk.Now, History: 4})
	if err != nil {
		t.Fatal(err)
	}
	return r, tab, clk
}

func TestIngest(t *testing.T) {
	claim := func(n int) Sample { s := testSample(); s.Claim = n; return s }
	tests := []struct {
		name   string
		from   netip.Addr
		data   []byte
		stored int    // node that must hold the sample, -1 = none
		reason string // rejection counter that must grow, "" = none
		errHas string
	}{
		{"no claim", nodeAddr(1), encode(t, claim(-1)), 1, "", ""},
		{"own number claimed", nodeAddr(2), encode(t, claim(2)), 2, "", ""},
		{"IPv4-mapped source", netip.AddrFrom16(nodeAddr(3).As16()), encode(t, claim(3)), 3, "", ""},
		{"claims another node", nodeAddr(1), encode(t, claim(2)), -1, RejectClaim, "claims to be node 2"},
		{"unknown source", netip.MustParseAddr("127.0.0.99"), encode(t, claim(-1)), -1, RejectSource, "not a node"},
		{"unknown source claiming a node", netip.MustParseAddr("10.1.1.1"), encode(t, claim(0)), -1, RejectSource, "not a node"},
		{"garbage", nodeAddr(0), []byte("\x00\x01garbage"), -1, RejectFormat, "malformed"},
		{"oversized", nodeAddr(0), make([]byte, MaxSize+1), -1, RejectFormat, "at most"},
	}
	for _, tt := range tests {
		r, _, _ := newTestReceiver(t)
		err := r.Ingest(tt.from, tt.data)
		if tt.errHas == "" && err != nil || tt.errHas != "" && (err == nil || !strings.Contains(err.Error(), tt.errHas)) {
			t.Errorf("%s: Ingest = %v, want error containing %q", tt.name, err, tt.errHas)
		}
		for n := range 4 {
			_, ok := r.Latest(n)
			if want := n == tt.stored; ok != want {
				t.Errorf("%s: node %d has a sample: %v, want %v", tt.name, n, ok, want)
			}
		}
		c := r.Counters()
		for _, reason := range RejectReasons() {
			want := uint64(0)
			if reason == tt.reason {
				want = 1
			}
			if c.Rejected[reason] != want {
				t.Errorf("%s: rejected[%s] = %d, want %d", tt.name, reason, c.Rejected[reason], want)
			}
		}
		if want := uint64(min(tt.stored+1, 1)); c.Samples != want {
			t.Errorf("%s: Samples = %d, want %d", tt.name, c.Samples, want)
		}
	}
	if _, err := NewReceiver(Config{}); err == nil {
		t.Error("NewReceiver without Resolve: nil error")
	}
}

func TestHistoryRing(t *testing.T) {
	r, _, clk := newTestReceiver(t) // History 4
	for seq := uint64(1); seq <= 6; seq++ {
		s := testSample()
		s.Claim, s.Seq, s.UptimeMS = -1, seq, seq*1000
		s.CPUs[0].Idle += seq * 100
		if err := r.Ingest(nodeAddr(0), encode(t, s)); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Second)
	}
	h := r.History(0)
	var got []uint64
	for _, e := range h {
		got = append(got, e.Sample.Seq)
	}
	if want := []uint64{3, 4, 5, 6}; !equalU64(got, want) {
		t.Errorf("History seqs = %v, want %v", got, want)
	}
	if !h[3].Time.After(h[0].Time) {
		t.Errorf("History times not ascending: %v … %v", h[0].Time, h[3].Time)
	}
	h[3].Sample.CPUs[0].Idle = 0 // a copy: the receiver must not see this
	st, ok := r.Status(0)
	if !ok || st.Report.Seq != 6 || !st.Report.HaveRates || st.Report.Cores[0].Idle != 100 || st.Gen != 6 {
		t.Errorf("Status = ok %v seq %d rates %v idle %v gen %d, want seq 6 with rates, idle 100, gen 6",
			ok, st.Report.Seq, st.Report.HaveRates, st.Report.Cores[0].Idle, st.Gen)
	}
	if r.History(1) != nil || r.History(-1) != nil || r.Gen(3) != 0 {
		t.Error("a silent node has history")
	}
}

func TestAliveAndStale(t *testing.T) {
	r, tab, clk := newTestReceiver(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// node 0: a non-Scyld host. node 1: a Scyld node, up through bpslave.
	// node 2: alive, then bpslave connects. node 3: silent.
	must(tab.SetState(nodes.System, 1, nodes.Boot))
	must(tab.SetState(nodes.System, 1, nodes.Up))
	send := func(n int) {
		t.Helper()
		s := testSample()
		s.Claim, s.IntervalMS = -1, 1000
		must(r.Ingest(nodeAddr(n), encode(t, s)))
	}
	state := func(n int) nodes.State { nd, _ := tab.Get(n); return nd.State }
	for _, n := range []int{0, 1, 2} {
		send(n)
	}
	for n, want := range []nodes.State{nodes.Alive, nodes.Up, nodes.Alive, nodes.Down} {
		if got := state(n); got != want {
			t.Errorf("after stats: node %d is %s, want %s", n, got, want)
		}
	}
	must(tab.SetState(nodes.System, 2, nodes.Boot)) // bpslave connects
	clk.Add(2 * time.Second)
	r.Sweep() // 2 s < 3 intervals of 1 s: nobody is stale yet
	if got := state(0); got != nodes.Alive {
		t.Errorf("after 2s: node 0 is %s, want alive", got)
	}
	if st, _ := r.Status(0); st.Stale {
		t.Error("after 2s: node 0 stale, want fresh")
	}
	clk.Add(2 * time.Second)
	r.Sweep()
	for n, want := range []nodes.State{nodes.Down, nodes.Up, nodes.Boot, nodes.Down} {
		if got := state(n); got != want {
			t.Errorf("after 4s of silence: node %d is %s, want %s", n, got, want)
		}
	}
	if st, _ := r.Status(0); !st.Stale {
		t.Error("after 4s: node 0 not stale")
	}
	send(0) // the host comes back; the state check is rate-limited to 1/s per node, and 4s passed
	if got := state(0); got != nodes.Alive {
		t.Errorf("host back: node 0 is %s, want alive", got)
	}
}

func TestServeUDP(t *testing.T) {
	r, tab, _ := newTestReceiver(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, pc) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	}()
	dial := func(from string) net.Conn {
		c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(from+":0")),
			pc.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// A real sender on node 1's address, collecting the fixture /proc.
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	var sent atomic.Uint64
	snd := Sender{Collector: Collector{Proc: "testdata/proc", Root: "."}, Claim: 1,
		Interval: 20 * time.Millisecond, Sent: func(seq uint64) { sent.Store(seq) }}
	go snd.Serve(sctx, dial("127.0.0.11"))
	// Bad input on the same socket.
	bad := dial("127.0.0.12")
	for _, b := range [][]byte{[]byte("garbage"), make([]byte, MaxSize+100), encode(t, testSample())} {
		if _, err := bad.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	stranger := dial("127.0.0.1")
	if _, err := stranger.Write(encode(t, Sample{Claim: -1})); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := r.Counters()
		st, ok := r.Status(1)
		if ok && st.Gen >= 2 && sent.Load() >= 2 && c.Rejected[RejectFormat] == 2 && c.Rejected[RejectClaim] == 1 &&
			c.Rejected[RejectSource] == 1 {
			if st.From != nodeAddr(1) || len(st.Report.Cores) != 2 || st.Report.Mem.Total != 2048000<<10 {
				t.Errorf("node 1 status = %+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5s: node 1 status %v (%+v), counters %+v", ok, st, c)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := r.Latest(2); ok {
		t.Error("node 2 has a sample, but it sent only garbage and a sample claiming node 3")
	}
	if nd, _ := tab.Get(1); nd.State != nodes.Alive {
		t.Errorf("node 1 is %s, want alive", nd.State)
	}
}

func TestConcurrentReaders(t *testing.T) {
	r, _, _ := newTestReceiver(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				for _, st := range r.All() {
					_ = st.Report.Cores
				}
				_ = r.History(0)
				select {
				case <-r.Changed():
				case <-ctx.Done():
				}
			}
		}()
	}
	b := encode(t, Sample{Claim: -1, CPUs: []CPU{{}}, Ifaces: []Iface{{Name: "eth0"}}})
	for i := range 2000 {
		if err := r.Ingest(nodeAddr(i%4), b); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
	if got := r.Counters().Samples; got != 2000 {
		t.Errorf("Samples = %d, want 2000", got)
	}
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
