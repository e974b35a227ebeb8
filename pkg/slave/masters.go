package slave

import (
	"context"
	"time"
)

// A node with several masters (the config's masterorder) is given them
// primary first (bpslave -m A,B,…): its primary is the master that
// booted it, which the boot servers made the first of its masters that
// was up (pkg/boot masters.go). It works as Scyld's did:
//
//   - The primary's session carries the node's jobs, its clients and
//     everything that master asks of it. A primary that refuses the node
//     for a while (its session from before a reboot still open) is
//     retried, never replaced by the next master: which master has a
//     node is the boot's decision, not a race between connections.
//   - Every other master gets a secondary session (secondary): the node
//     says so in its hello, that master shows it "[up]", and the node
//     refuses every stream one opens (session.serve) — it obeys only its
//     primary.
//   - When the primary session ends the node redials its primary (a
//     master restarting is back in a second), and keeps it as long as it
//     has nowhere else to go. Once the primary has been unreachable for
//     two of its ping intervals — the time that master takes to call the
//     node down — while another of its masters is connected, the node
//     reboots (reparent): a cold re-parenting. Its next boot is answered
//     by the first of its masters that is up, so its root, mounts, names
//     and logs all come from the new primary, never half from a dead one.
//     `bpctl -S N -R` on the new primary sends it back the same way once
//     the first master is up again.

// servePrimary keeps a session with the node's primary master,
// Masters[0], until ctx ends.
func (s *slave) servePrimary(ctx context.Context) {
	wait := minBackoff
	lost := time.Now() // since when the node has had no primary session
	for {
		s.reparent(lost)
		accepted, err := s.session(ctx, 0)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			msg := err.Error()
			s.lastErr.Store(&msg)
		}
		if accepted {
			wait, lost = minBackoff, time.Now()
		}
		s.log.Warn("session ended; reconnecting", "node", s.cfg.Node, "master", s.cfg.Masters[0], "err", err, "in", wait)
		if !pause(ctx, jitter(wait)) {
			return
		}
		wait = min(2*wait, maxBackoff)
	}
}

// secondary keeps a secondary session with master i (> 0) until ctx
// ends.
func (s *slave) secondary(ctx context.Context, i int) {
	wait := minBackoff
	for {
		accepted, err := s.session(ctx, i)
		if ctx.Err() != nil {
			return
		}
		if accepted {
			wait = minBackoff
			s.log.Warn("secondary master's session ended; reconnecting", "node", s.cfg.Node, "master", s.cfg.Masters[i], "err", err)
		}
		if !pause(ctx, jitter(wait)) {
			return
		}
		wait = min(2*wait, maxBackoff)
	}
}

// reparent reboots the node (Config.Power) when it has had no primary
// session since lost, for two of the primary's ping intervals, while a
// secondary master is connected (see the top of this file).
func (s *slave) reparent(lost time.Time) {
	if s.seen.Load() == 0 {
		return
	}
	grace := 2 * time.Duration(s.interval.Load())
	if grace <= 0 {
		grace = 2 * defaultPing
	}
	if time.Since(lost) < grace {
		return
	}
	if s.cfg.Power == nil {
		s.reparentOnce.Do(func() {
			s.log.Error("primary master gone and another master is up, but this bpslave cannot reboot the node to re-parent it", "node", s.cfg.Node, "master", s.cfg.Masters[0])
		})
		return
	}
	s.log.Warn("primary master gone; rebooting to re-parent to the next master that is up", "node", s.cfg.Node, "master", s.cfg.Masters[0], "gone", time.Since(lost).Round(time.Second))
	if err := s.cfg.Power("reboot"); err != nil {
		s.log.Error("reboot to re-parent", "node", s.cfg.Node, "err", err)
	}
}

// pause waits d, or until ctx ends (false).
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
