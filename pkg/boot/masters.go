package boot

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/beo-cluster/beo/pkg/config"
)

// A node with several masters (the config's masterorder) is answered by
// the first of them that is up: its primary master answers it; a later
// master answers only while every master before it in the node's order
// is down (MasterUp), which is how a node whose primary died boots from
// the next one (cold re-parenting: pkg/slave masters.go). A master that
// is not one of the node's masters never answers it. Masters sharing the
// config give the node the same address and name whichever answers.

// masterUpFor is how long one probe's answer stands, so a node's burst
// of DHCP packets costs one connection to each master before this one.
const masterUpFor = 2 * time.Second

// masterProbe dials the masters before this one, remembering each
// answer for masterUpFor. One dial per master is in flight at a time:
// requests that come while it runs wait for its answer, so a flood of
// DHCP packets while an earlier master's host is dead (each dial then
// takes its full second) makes one connection attempt, not one per
// packet.
type masterProbe struct {
	dial func(addr string) error // nil: a TCP connection, within a second

	mu   sync.Mutex
	seen map[netip.AddrPort]*probed
}

type probed struct {
	at   time.Time
	up   bool
	done chan struct{} // closed when the dial is over and up is set
}

// up reports whether bpmaster answers at a, dialing at most once every
// masterUpFor.
func (p *masterProbe) up(a netip.AddrPort, now time.Time) bool {
	p.mu.Lock()
	r := p.seen[a]
	if r == nil || now.Sub(r.at) >= masterUpFor {
		r = &probed{at: now, done: make(chan struct{})}
		if p.seen == nil {
			p.seen = map[netip.AddrPort]*probed{}
		}
		p.seen[a] = r
		p.mu.Unlock()
		dial := p.dial
		if dial == nil {
			dial = dialMaster
		}
		err := dial(a.String())
		p.mu.Lock()
		r.up = err == nil
		close(r.done)
		p.mu.Unlock()
		return err == nil
	}
	p.mu.Unlock()
	<-r.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return r.up
}

// dialMaster connects to bpmaster at addr and hangs up.
func dialMaster(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

// answers reports whether this server answers node w's boot (see the top
// of this file). A node one of its earlier masters will answer is still
// network-booting: OnBoot hears of it, so this master accepts the key
// the node makes for its new boot when it connects as a secondary.
func (s *Server) answers(cfg *config.Config, w who, what string) bool {
	self := s.addr.Addr()
	i, order := cfg.MasterRank(w.node, self), cfg.MasterOrder(w.node)
	if i < 0 {
		s.dialog(w, "%s %s not answered: masterorder gives node %d the masters %v, not this one (%s)", what, w.mac, w.node, order, self)
		return false
	}
	up := s.o.MasterUp
	if up == nil {
		port := cfg.Ports().BProc
		up = func(a netip.Addr) bool { return s.probe.up(netip.AddrPortFrom(a, port), s.clock()) }
	}
	for _, a := range order[:i] {
		if up(a) {
			s.dialog(w, "%s %s not answered: master %s, before this one in its masterorder, is up", what, w.mac, a)
			if s.o.OnBoot != nil {
				s.o.OnBoot(w.node)
			}
			return false
		}
	}
	if i > 0 {
		s.dialog(w, "%s %s: every master before this one in its masterorder (%v) is down; answering", what, w.mac, order[:i])
	}
	return true
}

// masterList is the node's masters for its command line (beo.masters=):
// "" unless it has more than one.
func masterList(cfg *config.Config, n int) string {
	order := cfg.MasterOrder(n)
	if len(order) < 2 {
		return ""
	}
	ms := make([]string, len(order))
	for i, a := range order {
		ms[i] = a.String()
	}
	return strings.Join(ms, ",")
}
