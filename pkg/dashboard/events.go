package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/stats"
)

// Event is the data of one /api/events message: "snapshot" carries every
// node, "update" only the nodes that changed. Count is the number of
// nodes in the table; a page drops tiles at or above it.
type Event struct {
	Time  time.Time `json:"time"`
	Count int       `json:"count"`
	Tiles []Tile    `json:"tiles"`
}

const pingEvery = 15 * time.Second

// events streams Server-Sent Events until the client goes away.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ctx := r.Context()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")

	watch := s.cfg.Table.Watch(ctx)
	changed := s.cfg.Stats.Changed()
	last := s.cfg.Table.All()
	marks := s.cfg.Stats.Marks(nil)
	tiles := make([]Tile, 0, len(last))
	for _, nd := range last {
		tiles = append(tiles, s.tile(nd))
	}
	if err := s.send(w, fl, "snapshot", len(last), tiles); err != nil {
		return
	}
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	stale := time.NewTicker(time.Second) // stats go stale without an event
	defer stale.Stop()
	var next []stats.Mark
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-watch:
			if !ok {
				return
			}
		case <-changed:
		case <-stale.C:
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
			fl.Flush()
			continue
		}
		// Gather what else happens within Coalesce into the same event.
		t := time.NewTimer(s.cfg.Coalesce)
	gather:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-watch:
			case <-t.C:
				break gather
			}
		}
		changed = s.cfg.Stats.Changed() // re-armed before reading: nothing is missed
		now := s.cfg.Table.All()
		next = s.cfg.Stats.Marks(next)
		tiles = tiles[:0]
		for n, nd := range now {
			if n >= len(last) || !sameNode(nd, last[n]) || markOf(next, n) != markOf(marks, n) {
				tiles = append(tiles, s.tile(nd))
			}
		}
		shrunk := len(now) < len(last)
		last, marks = now, append(marks[:0], next...)
		if len(tiles) == 0 && !shrunk {
			continue
		}
		if err := s.send(w, fl, "update", len(now), tiles); err != nil {
			return
		}
	}
}

func markOf(m []stats.Mark, n int) stats.Mark {
	if n < len(m) {
		return m[n]
	}
	return stats.Mark{}
}

// sameNode reports whether a tile would show a and b alike.
func sameNode(a, b nodes.Node) bool {
	return a.State == b.State && a.Secondary == b.Secondary && a.Addr == b.Addr && a.Since.Equal(b.Since)
}

func (s *Server) send(w http.ResponseWriter, fl http.Flusher, name string, count int, tiles []Tile) error {
	b, err := json.Marshal(Event{Time: s.cfg.Clock(), Count: count, Tiles: tiles})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b); err != nil {
		return err
	}
	fl.Flush()
	return nil
}
