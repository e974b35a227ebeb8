// Package stats benchmarks recvstats against the UDP floor of this
// machine, in the same run: how many stats samples per second one
// receiver goroutine stores, next to how many bare datagrams per second a
// loop that only reads them manages (one recvfrom per datagram, and
// recvmmsg batches). See README.md for the numbers and the command.
package stats

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/stats"
)

const (
	senders  = 8  // sockets, each its own source address = node
	batch    = 64 // datagrams per sendmmsg
	duration = 2 * time.Second
)

// sample is a typical node's report: 4 cores, lo + 2 NICs.
func sample(tb testing.TB) []byte {
	s := stats.Sample{Claim: -1, Seq: 123456, IntervalMS: 1000, UptimeMS: 86400000, Load1: 150, Load5: 120, Load15: 90,
		Running: 3, Threads: 400, Procs: 150, MemTotal: 64 << 30, MemFree: 10 << 30, MemAvailable: 40 << 30,
		Buffers: 1 << 30, Cached: 20 << 30, SwapTotal: 8 << 30, SwapFree: 8 << 30,
		RootTotal: 2 << 30, RootFree: 1 << 30, RootAvail: 1 << 30}
	for i := range 4 {
		s.CPUs = append(s.CPUs, stats.CPU{User: 9000000 + uint64(i), Nice: 1000, System: 700000, Idle: 50000000,
			IOWait: 20000, IRQ: 3000, SoftIRQ: 9000})
	}
	for _, n := range []string{"lo", "eth0", "ib0"} {
		s.Ifaces = append(s.Ifaces, stats.Iface{Name: n, RxBytes: 1 << 40, RxPackets: 1 << 30, TxBytes: 1 << 39, TxPackets: 1 << 29})
	}
	b, err := s.Append(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func src(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, byte(10 + i)}) }

func resolve(a netip.Addr) (int, bool) {
	b := a.As4()
	if b[0] != 127 || b[3] < 10 || b[3] >= 10+senders {
		return 0, false
	}
	return int(b[3]) - 10, true
}

// BenchmarkDecodeStore is the receiver's work per sample without the
// socket: resolve, decode, store in the ring, check the table.
func BenchmarkDecodeStore(b *testing.B) {
	tab := nodes.New(nil, nodes.Node{Num: 0}, nodes.Node{Num: 1})
	r, err := stats.NewReceiver(stats.Config{Resolve: resolve, Table: tab})
	if err != nil {
		b.Fatal(err)
	}
	d := sample(b)
	b.SetBytes(int64(len(d)))
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Ingest(src(1), d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

// blast sends datagrams d to dst from `senders` sockets until ctx ends.
func blast(ctx context.Context, tb testing.TB, dst *net.UDPAddr, d []byte) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range senders {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src(i), 0)))
		if err != nil {
			tb.Fatal(err)
		}
		pc := ipv4.NewPacketConn(c)
		ms := make([]ipv4.Message, batch)
		for j := range ms {
			ms[j] = ipv4.Message{Buffers: [][]byte{d}, Addr: dst}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for ctx.Err() == nil {
				pc.WriteBatch(ms, 0) // ECONNREFUSED etc. do not matter
			}
		}()
	}
	return &wg
}

// listen makes the receiving socket with a large buffer.
func listen(tb testing.TB) *net.UDPConn {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	c.SetReadBuffer(8 << 20)
	return c
}

// threadCPU is the CPU time a thread of this process used so far: the
// kernel's per-thread CPU clock, MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED).
func threadCPU(tid int) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(int32(^tid<<3|6), &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// measure runs read, on a thread of its own, on a socket being blasted
// for duration, and reports read's count per second of wall time and per
// second of the reading thread's CPU time: the second is the capacity of
// one core, whatever share of the machine the senders took.
// A reader that keeps its own count stores itself in counted instead of
// adding to n.
func measure(b *testing.B, counted *atomic.Pointer[stats.Receiver],
	read func(ctx context.Context, c *net.UDPConn, n *atomic.Uint64)) {
	d := sample(b)
	for b.Loop() {
		c := listen(b)
		ctx, cancel := context.WithCancel(context.Background())
		var n atomic.Uint64
		done := make(chan struct{})
		tidc := make(chan int, 1)
		go func() {
			defer close(done)
			runtime.LockOSThread() // stays locked: the thread dies with the goroutine
			tidc <- unix.Gettid()
			read(ctx, c, &n)
		}()
		tid := <-tidc
		count := n.Load
		if r := counted.Swap(nil); r != nil {
			count = func() uint64 { return r.Counters().Samples }
		}
		wg := blast(ctx, b, c.LocalAddr().(*net.UDPAddr), d)
		time.Sleep(200 * time.Millisecond) // warm up: buffers full, goroutines running
		if r := counted.Swap(nil); r != nil {
			count = func() uint64 { return r.Counters().Samples }
		}
		start, n0, cpu0 := time.Now(), count(), threadCPU(tid)
		time.Sleep(duration) // the measurement window
		got, el, cpu := count()-n0, time.Since(start), threadCPU(tid)-cpu0
		cancel()
		c.Close()
		wg.Wait()
		<-done
		b.ReportMetric(float64(got)/el.Seconds(), "datagrams/s")
		if cpu > 0 {
			b.ReportMetric(float64(got)/cpu.Seconds(), "datagrams/cpu-s")
		}
	}
	b.ReportMetric(float64(len(d)), "bytes/datagram")
}

// BenchmarkUDP compares recvstats with the floor: reading and discarding.
func BenchmarkUDP(b *testing.B) {
	var counted atomic.Pointer[stats.Receiver] // recvstats counts for itself
	b.Run("floor-plain", func(b *testing.B) {
		measure(b, &counted, func(ctx context.Context, c *net.UDPConn, n *atomic.Uint64) {
			buf := make([]byte, stats.MaxSize+1)
			for {
				if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
					return
				}
				n.Add(1)
			}
		})
	})
	b.Run("floor-batch", func(b *testing.B) {
		measure(b, &counted, func(ctx context.Context, c *net.UDPConn, n *atomic.Uint64) {
			pc := ipv4.NewPacketConn(c)
			ms := make([]ipv4.Message, 32)
			for i := range ms {
				ms[i].Buffers = [][]byte{make([]byte, stats.MaxSize+1)}
			}
			for {
				k, err := pc.ReadBatch(ms, 0)
				if err != nil {
					return
				}
				n.Add(uint64(k))
			}
		})
	})
	b.Run("recvstats", func(b *testing.B) {
		measure(b, &counted, func(ctx context.Context, c *net.UDPConn, n *atomic.Uint64) {
			tab := nodes.New(nil, nodes.Node{Num: senders - 1})
			r, err := stats.NewReceiver(stats.Config{Resolve: resolve, Table: tab})
			if err != nil {
				b.Error(err)
				return
			}
			counted.Store(r) // measure reads r's own counter: no extra goroutine
			r.Serve(ctx, c)
			if rej := r.Counters().Rejected; rej[stats.RejectFormat]+rej[stats.RejectSource]+rej[stats.RejectClaim] > 0 {
				b.Errorf("rejected: %v", rej)
			}
		})
	})
}
