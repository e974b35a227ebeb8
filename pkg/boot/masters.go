package boot

import (
	"net"
	"net/netip"
	"slices"
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
// answer for masterUpFor.
type masterProbe struct {
	mu   sync.Mutex
	seen map[netip.AddrPort]probed
}

type probed struct {
	at time.Time
	up bool
}

// up reports whether bpmaster answers at a, dialing at most once every
// masterUpFor.
func (p *masterProbe) up(a netip.AddrPort, now time.Time) bool {
	p.mu.Lock()
	r, ok := p.seen[a]
	p.mu.Unlock()
	if ok && now.Sub(r.at) < masterUpFor {
		return r.up
	}
	c, err := net.DialTimeout("tcp", a.String(), time.Second)
	if err == nil {
		c.Close()
	}
	p.mu.Lock()
	if p.seen == nil {
		p.seen = map[netip.AddrPort]probed{}
	}
	p.seen[a] = probed{at: now, up: err == nil}
	p.mu.Unlock()
	return err == nil
}

// answers reports whether this server answers node w's boot (see the top
// of this file). A node one of its earlier masters will answer is still
// network-booting: OnBoot hears of it, so this master accepts the key
// the node makes for its new boot when it connects as a secondary.
func (s *Server) answers(cfg *config.Config, w who, what string) bool {
	order := cfg.MasterOrder(w.node)
	if order == nil {
		return true
	}
	self := s.addr.Addr()
	i := slices.Index(order, self)
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
