// Package ratelog keeps a flood of bad input from becoming a flood of log
// lines.
//
// 2 000 junk connections to kickback or the client socket used to write
// 1 940 warnings. A Handler wrapped by New lets warnings and errors with
// the same message through Burst times per Interval; the rest are held
// back and counted per source (the first of Options.SourceKeys a record
// carries, e.g. peer=, uid=, addr=), and when the interval ends one
// summary line per message reports the counts:
//
//	level=WARN msg="kickback: bad request (held back)" held=1935 interval=10s sources="127.0.0.1:1935"
//
// Records below Warn pass untouched: only complaints are throttled. The
// same scheme as recvstats' rejected samples and beoklogd's dropped
// messages, in one place for every daemon of `beo master`.
package ratelog

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options shape a throttle; zero values take the defaults.
type Options struct {
	Interval   time.Duration // default 10 s
	Burst      int           // lines of one message per interval before holding back; default 5
	SourceKeys []string      // attribute keys naming a record's source; default peer, addr, uid, node
	MaxSources int           // sources named in a summary (the busiest); default 8
}

// New returns a handler that throttles h's warnings as described above.
func New(h slog.Handler, o Options) slog.Handler {
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Burst <= 0 {
		o.Burst = 5
	}
	if o.SourceKeys == nil {
		o.SourceKeys = []string{"peer", "addr", "uid", "node"}
	}
	if o.MaxSources <= 0 {
		o.MaxSources = 8
	}
	return &handler{h: h, st: &state{o: o, base: h, msgs: map[string]*window{}}}
}

type state struct {
	o    Options
	base slog.Handler
	mu   sync.Mutex
	msgs map[string]*window
}

// window is one message's current interval.
type window struct {
	start  time.Time
	passed int
	held   map[string]int
	timer  *time.Timer
}

type handler struct {
	h     slog.Handler
	st    *state
	attrs []slog.Attr // from WithAttrs, searched for the source
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{h: h.h.WithAttrs(as), st: h.st, attrs: append(slices.Clip(h.attrs), as...)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{h: h.h.WithGroup(name), st: h.st, attrs: h.attrs}
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn || h.st.allow(r.Time, r.Message, h.source(r)) {
		return h.h.Handle(ctx, r)
	}
	return nil
}

// source is the value of the first source key the record or the
// handler's attributes carry; "" when none.
func (h *handler) source(r slog.Record) string {
	for _, k := range h.st.o.SourceKeys {
		v := ""
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == k {
				v = a.Value.String()
				return false
			}
			return true
		})
		if v != "" {
			return v
		}
		for _, a := range h.attrs {
			if a.Key == k {
				return a.Value.String()
			}
		}
	}
	return ""
}

func (s *state) allow(now time.Time, msg, src string) bool {
	if now.IsZero() {
		now = time.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.msgs[msg]
	if w == nil || now.Sub(w.start) >= s.o.Interval {
		if w != nil && len(w.held) > 0 { // its timer has not fired yet
			w.timer.Stop()
			s.summarize(msg, w)
		}
		w = &window{start: now}
		s.msgs[msg] = w
	}
	if w.passed < s.o.Burst {
		w.passed++
		return true
	}
	if w.held == nil {
		w.held = map[string]int{}
		w.timer = time.AfterFunc(s.o.Interval-now.Sub(w.start), func() { s.flush(msg, w) })
	}
	w.held[src]++
	return false
}

// flush writes w's summary when its interval ends, unless a newer record
// already did.
func (s *state) flush(msg string, w *window) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(w.held) == 0 {
		return
	}
	s.summarize(msg, w)
	if s.msgs[msg] == w {
		delete(s.msgs, msg)
	}
}

// summarize writes one line for w's held records and forgets them; s.mu
// is held.
func (s *state) summarize(msg string, w *window) {
	type count struct {
		src string
		n   int
	}
	var cs []count
	total := 0
	for src, n := range w.held {
		cs = append(cs, count{src, n})
		total += n
	}
	slices.SortFunc(cs, func(a, b count) int {
		return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.src, b.src))
	})
	var parts []string
	for i, c := range cs {
		if i == s.o.MaxSources {
			parts = append(parts, fmt.Sprintf("+%d more", len(cs)-i))
			break
		}
		if c.src == "" {
			c.src = "?"
		}
		parts = append(parts, fmt.Sprintf("%s:%d", c.src, c.n))
	}
	w.held = nil
	r := slog.NewRecord(time.Now(), slog.LevelWarn, msg+" (held back)", 0)
	r.AddAttrs(slog.Int("held", total), slog.Duration("interval", s.o.Interval), slog.String("sources", strings.Join(parts, " ")))
	s.base.Handle(context.Background(), r)
}
