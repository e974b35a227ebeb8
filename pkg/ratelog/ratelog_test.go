package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.b.String()), "\n")
}

func TestFloodIsSummarized(t *testing.T) {
	var buf lockedBuf
	log := slog.New(New(slog.NewTextHandler(&buf, nil), Options{Interval: 200 * time.Millisecond, Burst: 3}))
	for i := 0; i < 2000; i++ {
		peer := "10.0.0.1"
		if i%4 == 0 {
			peer = "10.0.0.2"
		}
		log.With("peer", peer).Warn("kickback: bad request", "err", "junk")
	}
	log.Info("routine", "peer", "10.0.0.1") // not a complaint: never held
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(strings.Join(buf.lines(), "\n"), "held back") {
		if time.Now().After(deadline) {
			t.Fatalf("no summary line; log:\n%s", strings.Join(buf.lines(), "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	lines := buf.lines()
	if len(lines) != 5 { // 3 warnings, the info line, the summary
		t.Fatalf("got %d lines, want 5:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	sum := lines[4]
	for _, want := range []string{"held=1997", `sources="10.0.0.1:1498 10.0.0.2:499"`} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary %q lacks %q", sum, want)
		}
	}
}

func TestMessagesAndIntervalsAreSeparate(t *testing.T) {
	var buf lockedBuf
	log := slog.New(New(slog.NewTextHandler(&buf, nil), Options{Interval: time.Hour, Burst: 1}))
	log.Warn("a", "uid", 7)
	log.Warn("b", "uid", 7) // another message has its own burst
	log.Warn("a", "uid", 7) // held
	if got := len(buf.lines()); got != 2 {
		t.Errorf("got %d lines, want 2:\n%s", got, strings.Join(buf.lines(), "\n"))
	}
}
