package slave

import (
	"context"
	"errors"
	"strings"
	"time"
)

// A node with several masters (the config's masterorder: bpslave -m
// A,B,…, primary first) works as Scyld's did:
//
//   - Its primary master is the first of its masters, in order, that
//     accepts it (choose); the primary's session carries the node's jobs,
//     its clients and everything the master asks of it.
//   - Every other master gets a secondary session (secondary): the node
//     says so in its hello, that master shows it "[up]", and the node
//     refuses every stream one opens (session.serve) — it obeys only its
//     primary.
//   - When the primary session ends the node redials its primary (a
//     master restarting is back in a second), and keeps it as long as it
//     has nowhere else to go. Once the primary has been gone for two of
//     its ping intervals — the time that master takes to call the node
//     down — while another of its masters is connected, the node reboots
//     (reparent): a cold re-parenting. Its next boot is answered by the
//     first of its masters that is up (pkg/boot), so its root, mounts,
//     names and logs all come from the new primary, never half from a
//     dead one. `bpctl -S N -R` on the new primary sends it back the
//     same way once the first master is up again.

// servePrimary keeps a session with the node's primary master until ctx
// ends.
func (s *slave) servePrimary(ctx context.Context) {
	wait := minBackoff
	var lost time.Time // when the last accepted primary session ended
	for {
		var accepted bool
		var err error
		if p := int(s.primary.Load()); p >= 0 {
			s.reparent(lost)
			accepted, err = s.session(ctx, p, false)
		} else {
			accepted, err = s.choose(ctx)
		}
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
		s.log.Warn("session ended; reconnecting", "node", s.cfg.Node, "master", s.primaryName(), "err", err, "in", wait)
		if !pause(ctx, jitter(wait)) {
			return
		}
		wait = min(2*wait, maxBackoff)
	}
}

// choose tries the masters in order until one accepts this node as its
// primary, and serves that one until the session ends.
func (s *slave) choose(ctx context.Context) (accepted bool, err error) {
	var errs []error
	for i := range s.cfg.Masters {
		accepted, err := s.session(ctx, i, false)
		if accepted || ctx.Err() != nil {
			return accepted, err
		}
		errs = append(errs, err)
	}
	return false, errors.Join(errs...)
}

// secondary keeps a secondary session with master i while another
// master is the primary, until ctx ends.
func (s *slave) secondary(ctx context.Context, i int) {
	wait := minBackoff
	for {
		if p := int(s.primary.Load()); p < 0 || p == i {
			// No primary yet (or master i is it): look again soon.
			if !pause(ctx, time.Second) {
				return
			}
			continue
		}
		accepted, err := s.session(ctx, i, true)
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

// reparent reboots the node (Config.Power) when its primary master
// session ended at lost, two ping intervals have passed, and a secondary
// master is connected (see the top of this file).
func (s *slave) reparent(lost time.Time) {
	if lost.IsZero() || s.seen.Load() == 0 {
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
			s.log.Error("primary master gone and another master is up, but this bpslave cannot reboot the node to re-parent it", "node", s.cfg.Node, "master", s.primaryName())
		})
		return
	}
	s.log.Warn("primary master gone; rebooting to re-parent to the next master that is up", "node", s.cfg.Node, "master", s.primaryName(), "gone", time.Since(lost).Round(time.Second))
	if err := s.cfg.Power("reboot"); err != nil {
		s.log.Error("reboot to re-parent", "node", s.cfg.Node, "err", err)
	}
}

// primaryName is the primary master's host:port, or every master's
// before one accepted.
func (s *slave) primaryName() string {
	if p := int(s.primary.Load()); p >= 0 {
		return s.cfg.Masters[p]
	}
	return strings.Join(s.cfg.Masters, ",")
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
