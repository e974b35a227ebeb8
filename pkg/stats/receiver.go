package stats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/beo-cluster/beo/pkg/nodes"
)

// Defaults of Config.
const (
	DefaultHistory        = 60
	DefaultStaleIntervals = 3
	maxNode               = 1 << 20 // as config.MaxNodes
	batchSize             = 32
)

// Config is what a Receiver runs on.
type Config struct {
	// Resolve maps a datagram's source address to a node number (the
	// config's NodeByAddr); required. It may change its answers over time
	// (a reloaded config): it is called for every datagram.
	Resolve func(netip.Addr) (int, bool)
	// Table, if set, gets non-Scyld hosts marked alive and, when they go
	// silent, down.
	Table *nodes.Table
	// History is how many samples each node's ring keeps (DefaultHistory).
	History int
	// StaleIntervals: a node silent for that many of its own intervals is
	// stale, and an alive node goes down (DefaultStaleIntervals).
	StaleIntervals int
	Log            *slog.Logger
	Clock          func() time.Time
}

// Entry is one stored sample: when it arrived (receiver clock), from
// where, and what it said.
type Entry struct {
	Time   time.Time
	From   netip.Addr
	Sample Sample
}

// Status is a node's latest sample, derived (see Report).
type Status struct {
	Node   int        `json:"node"`
	From   netip.Addr `json:"from"`
	Last   time.Time  `json:"last"`
	Stale  bool       `json:"stale"`
	Gen    uint64     `json:"gen"` // bumped by every stored sample
	Report Report     `json:"report"`
}

// Rejection reasons, as counted by Counters.
const (
	RejectFormat = "malformed"      // not a valid sample (bad header, size, varints, names)
	RejectSource = "unknown_source" // source address is no node
	RejectClaim  = "wrong_claim"    // payload claims another node
)

// reason indexes Receiver.rejected.
type reason int

const (
	reasonFormat reason = iota
	reasonSource
	reasonClaim
	numReasons
)

func (r reason) String() string {
	switch r {
	case reasonFormat:
		return RejectFormat
	case reasonSource:
		return RejectSource
	case reasonClaim:
		return RejectClaim
	}
	return "unknown"
}

// Counters are the receiver's totals since it started.
type Counters struct {
	Samples  uint64            // stored
	Rejected map[string]uint64 // by reason
}

// ring is one node's history; guarded by Receiver.mu.
type ring struct {
	buf     []Entry // len ≤ cap = History; buf[head] is the oldest when full
	head    int
	gen     uint64
	checked time.Time // last time the table state was looked at
}

func (g *ring) latest() *Entry {
	if len(g.buf) == 0 {
		return nil
	}
	return &g.buf[(g.head+len(g.buf)-1)%len(g.buf)]
}

func (g *ring) previous() *Entry {
	if len(g.buf) < 2 {
		return nil
	}
	return &g.buf[(g.head+len(g.buf)-2)%len(g.buf)]
}

// Receiver is recvstats: it stores the latest samples of every node. Its
// methods are safe for concurrent use.
type Receiver struct {
	cfg Config

	mu     sync.RWMutex
	rings  []*ring // by node number; nil = never heard from
	notify chan struct{}

	samples  atomic.Uint64
	rejected [numReasons]atomic.Uint64
	lastWarn atomic.Int64 // unix nanos of the last rejection logged
}

// NewReceiver makes a receiver with no samples.
func NewReceiver(cfg Config) (*Receiver, error) {
	if cfg.Resolve == nil {
		return nil, errors.New("stats: receiver needs a Resolve function")
	}
	if cfg.History <= 0 {
		cfg.History = DefaultHistory
	}
	if cfg.StaleIntervals <= 0 {
		cfg.StaleIntervals = DefaultStaleIntervals
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Receiver{cfg: cfg}, nil
}

// Serve reads datagrams from pc until ctx ends, then closes pc. Once a
// second it sweeps for nodes gone silent (Sweep).
func (r *Receiver) Serve(ctx context.Context, pc net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	sweepCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-sweepCtx.Done():
				return
			case <-t.C:
				r.Sweep()
			}
		}
	}()
	var err error
	if uc, ok := pc.(*net.UDPConn); ok && isIPv4(uc.LocalAddr()) {
		err = r.serveBatch(ipv4.NewPacketConn(uc))
	} else {
		err = r.servePlain(pc)
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("recvstats: read: %w", err)
}

func isIPv4(a net.Addr) bool {
	ua, ok := a.(*net.UDPAddr)
	return ok && ua.IP.To4() != nil
}

// serveBatch reads with recvmmsg, batchSize datagrams per call.
func (r *Receiver) serveBatch(pc *ipv4.PacketConn) error {
	ms := make([]ipv4.Message, batchSize)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, MaxSize+1)}
	}
	var scratch Sample
	for {
		n, err := pc.ReadBatch(ms, 0)
		if err != nil {
			return err
		}
		for _, m := range ms[:n] {
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			from, _ := netip.AddrFromSlice(ua.IP)
			r.ingest(from.Unmap(), m.Buffers[0][:m.N], &scratch)
		}
	}
}

// servePlain reads one datagram per call, for any PacketConn.
func (r *Receiver) servePlain(pc net.PacketConn) error {
	buf := make([]byte, MaxSize+1)
	var scratch Sample
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		from, _ := netip.AddrFromSlice(ua.IP)
		r.ingest(from.Unmap(), buf[:n], &scratch)
	}
}

// Ingest handles one datagram from the given source address as Serve
// does: the error says why it was rejected (nil = stored).
func (r *Receiver) Ingest(from netip.Addr, b []byte) error {
	var s Sample
	return r.ingest(from.Unmap(), b, &s)
}

func (r *Receiver) ingest(from netip.Addr, b []byte, s *Sample) error {
	n, ok := r.cfg.Resolve(from)
	if !ok || n < 0 || n >= maxNode {
		return r.reject(reasonSource, fmt.Errorf("stats from %s: not a node address", from))
	}
	if err := s.Decode(b); err != nil {
		return r.reject(reasonFormat, fmt.Errorf("node %d (%s): %w", n, from, err))
	}
	if s.Claim >= 0 && s.Claim != n {
		return r.reject(reasonClaim, fmt.Errorf("node %d (%s): sample claims to be node %d", n, from, s.Claim))
	}
	now := r.cfg.Clock()
	r.mu.Lock()
	if n >= len(r.rings) {
		r.rings = append(r.rings, make([]*ring, n+1-len(r.rings))...)
	}
	g := r.rings[n]
	if g == nil {
		g = &ring{buf: make([]Entry, 0, r.cfg.History)}
		r.rings[n] = g
	}
	var e *Entry
	if len(g.buf) < cap(g.buf) {
		g.buf = g.buf[:len(g.buf)+1]
		e = &g.buf[len(g.buf)-1]
	} else {
		e = &g.buf[g.head]
		g.head = (g.head + 1) % len(g.buf)
	}
	e.Time, e.From = now, from
	copySample(&e.Sample, s)
	g.gen++
	check := r.cfg.Table != nil && now.Sub(g.checked) >= time.Second
	if check {
		g.checked = now
	}
	if r.notify != nil {
		close(r.notify)
		r.notify = nil
	}
	r.mu.Unlock()
	r.samples.Add(1)
	if check {
		r.markAlive(n)
	}
	return nil
}

// copySample copies src into dst, reusing dst's slices.
func copySample(dst, src *Sample) {
	cpus, ifs := dst.CPUs, dst.Ifaces
	*dst = *src
	dst.CPUs = append(grow(cpus, 0), src.CPUs...)
	dst.Ifaces = append(grow(ifs, 0), src.Ifaces...)
}

// markAlive makes a down node alive: it sends stats but has no bpslave
// session (every other state belongs to bpmaster and stays).
func (r *Receiver) markAlive(n int) {
	nd, ok := r.cfg.Table.Get(n)
	if !ok || nd.State != nodes.Down {
		return
	}
	if err := r.cfg.Table.SetStateFrom(nodes.System, n, nodes.Down, nodes.Alive); err == nil {
		r.cfg.Log.Info("node alive: sends stats without a bpslave session", "node", n)
	}
}

func (r *Receiver) reject(why reason, err error) error {
	r.rejected[why].Add(1)
	now := r.cfg.Clock().UnixNano()
	last := r.lastWarn.Load()
	if now-last >= int64(10*time.Second) && r.lastWarn.CompareAndSwap(last, now) {
		r.cfg.Log.Warn("stats sample rejected (further rejections for 10s only counted)",
			"reason", why, "err", err)
	}
	return err
}

// staleAfter is how long node silence may last, given its interval.
func (r *Receiver) staleAfter(s *Sample) time.Duration {
	// A sender's interval counts between 1 s and an hour: one claiming
	// 10^12 ms would never go stale.
	iv := time.Duration(min(s.IntervalMS, uint64(time.Hour/time.Millisecond))) * time.Millisecond
	iv = max(iv, time.Second)
	return time.Duration(r.cfg.StaleIntervals) * iv
}

// Sweep marks alive nodes that went silent down. Serve calls it every
// second; tests call it with a fake clock.
func (r *Receiver) Sweep() {
	if r.cfg.Table == nil {
		return
	}
	now := r.cfg.Clock()
	var silent []int
	r.mu.RLock()
	for n, g := range r.rings {
		if e := g.latestOrNil(); e != nil && now.Sub(e.Time) > r.staleAfter(&e.Sample) {
			silent = append(silent, n)
		}
	}
	r.mu.RUnlock()
	for _, n := range silent {
		err := r.cfg.Table.SetStateFrom(nodes.System, n, nodes.Alive, nodes.Down)
		if err == nil {
			r.cfg.Log.Info("node down: its stats stopped", "node", n)
		}
	}
}

func (g *ring) latestOrNil() *Entry {
	if g == nil {
		return nil
	}
	return g.latest()
}

// Changed returns a channel closed when the next sample is stored.
func (r *Receiver) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.notify == nil {
		r.notify = make(chan struct{})
	}
	return r.notify
}

// Latest returns a copy of node n's newest entry.
func (r *Receiver) Latest(n int) (Entry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n < 0 || n >= len(r.rings) || r.rings[n] == nil {
		return Entry{}, false
	}
	e := r.rings[n].latest()
	return Entry{Time: e.Time, From: e.From, Sample: e.Sample.Clone()}, true
}

// History returns copies of node n's stored entries, oldest first.
func (r *Receiver) History(n int) []Entry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n < 0 || n >= len(r.rings) || r.rings[n] == nil {
		return nil
	}
	g := r.rings[n]
	out := make([]Entry, len(g.buf))
	for i := range g.buf {
		e := &g.buf[(g.head+i)%len(g.buf)]
		out[i] = Entry{Time: e.Time, From: e.From, Sample: e.Sample.Clone()}
	}
	return out
}

// Gen returns node n's generation: it grows with every stored sample, 0
// before the first.
func (r *Receiver) Gen(n int) uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n < 0 || n >= len(r.rings) || r.rings[n] == nil {
		return 0
	}
	return r.rings[n].gen
}

// Status returns node n's latest sample, derived; false if it never sent.
func (r *Receiver) Status(n int) (Status, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n < 0 || n >= len(r.rings) || r.rings[n] == nil {
		return Status{}, false
	}
	return r.status(n, r.cfg.Clock()), true
}

// status derives node n's Status; r.mu is held.
func (r *Receiver) status(n int, now time.Time) Status {
	g := r.rings[n]
	cur := g.latest()
	var prev *Sample
	if p := g.previous(); p != nil {
		prev = &p.Sample
	}
	return Status{Node: n, From: cur.From, Last: cur.Time, Gen: g.gen,
		Stale:  now.Sub(cur.Time) > r.staleAfter(&cur.Sample),
		Report: Derive(prev, &cur.Sample)}
}

// All returns the Status of every node that ever sent, by number.
func (r *Receiver) All() []Status {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.cfg.Clock()
	var out []Status
	for n, g := range r.rings {
		if g != nil {
			out = append(out, r.status(n, now))
		}
	}
	return out
}

// Counters returns the totals.
func (r *Receiver) Counters() Counters {
	c := Counters{Samples: r.samples.Load(), Rejected: map[string]uint64{}}
	for i := range numReasons {
		c.Rejected[i.String()] = r.rejected[i].Load()
	}
	return c
}

// RejectReasons lists the rejection reasons, sorted.
func RejectReasons() []string {
	var out []string
	for i := range numReasons {
		out = append(out, i.String())
	}
	sort.Strings(out)
	return out
}

// Mark is what a watcher needs to know whether a node's stats changed.
type Mark struct {
	Gen   uint64 // 0 = never sent
	Stale bool
}

// Marks fills dst with every node's Mark, indexed by node number (up to
// the highest node that ever sent), and returns it.
func (r *Receiver) Marks(dst []Mark) []Mark {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.cfg.Clock()
	dst = grow(dst, len(r.rings))
	for n, g := range r.rings {
		dst[n] = Mark{}
		if e := g.latestOrNil(); e != nil {
			dst[n] = Mark{Gen: g.gen, Stale: now.Sub(e.Time) > r.staleAfter(&e.Sample)}
		}
	}
	return dst
}
