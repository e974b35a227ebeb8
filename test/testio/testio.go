// Package testio holds the small writers tests share: a buffer a process
// (or goroutine) writes while the test polls it, and a writer that
// signals each write.
package testio

import (
	"bytes"
	"io"
	"sync"
)

// Buffer is a bytes.Buffer safe for a writer and a polling test.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Len reports how many bytes were written.
func (l *Buffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

// SignalWriter writes to W and then sends on C, if C has room.
type SignalWriter struct {
	W io.Writer
	C chan struct{}
}

func (s SignalWriter) Write(p []byte) (int, error) {
	n, err := s.W.Write(p)
	select {
	case s.C <- struct{}{}:
	default:
	}
	return n, err
}
