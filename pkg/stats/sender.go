package stats

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// DefaultInterval is how often sendstats reports.
const DefaultInterval = 5 * time.Second

// Sender is sendstats: it collects a sample every Interval and writes it
// to a connected UDP socket.
type Sender struct {
	Collector Collector
	Claim     int           // node number to claim, -1 for none (non-Scyld hosts)
	Interval  time.Duration // DefaultInterval if 0
	Log       *slog.Logger
	// Sent, if set, is called after each sample was written (tests).
	Sent func(seq uint64)
}

// Serve sends a sample at once and then every Interval until ctx ends. A
// failed collection or send is logged and retried at the next tick: the
// master may simply not be up yet (ICMP port unreachable makes the next
// write fail with ECONNREFUSED). Each sample goes to every conn: a node
// with several masters reports to each of them.
func (s Sender) Serve(ctx context.Context, conns ...net.Conn) error {
	iv := s.Interval
	if iv <= 0 {
		iv = DefaultInterval
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	var buf []byte
	var seq uint64
	for {
		seq++
		b, err := s.once(buf[:0], seq, iv)
		if err == nil {
			buf = b
			for _, c := range conns {
				if _, werr := c.Write(b); werr != nil {
					log.Warn("sendstats", "err", fmt.Errorf("send to %s: %w", c.RemoteAddr(), werr))
					err = werr
				}
			}
		} else {
			log.Warn("sendstats", "err", err)
		}
		if err == nil && s.Sent != nil {
			s.Sent(seq)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s Sender) once(buf []byte, seq uint64, iv time.Duration) ([]byte, error) {
	smp, err := s.Collector.Collect()
	if err != nil {
		return nil, err
	}
	smp.Claim, smp.Seq, smp.IntervalMS = s.Claim, seq, uint64(iv/time.Millisecond)
	return smp.Append(buf)
}
