package link

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRendezvous(t *testing.T) {
	const wait = 10 * time.Second
	pipe := func() (net.Conn, net.Conn) { return net.Pipe() }
	isClosed := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF || err != nil && strings.Contains(err.Error(), "closed")
	}
	const d = 50 * time.Millisecond
	waitEmpty := func(t *testing.T, r *Rendezvous) {
		t.Helper()
		deadline := time.Now().Add(wait)
		for r.Pending() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d slots still held", r.Pending())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	t.Run("stream first", func(t *testing.T) {
		r := NewRendezvous(wait, wait)
		defer r.Close()
		a, _ := pipe()
		r.Deliver(7, a)
		got, err := r.Claim(7)
		if err != nil || got != a || r.Pending() != 0 {
			t.Errorf("got %v, %v, %d pending", got, err, r.Pending())
		}
	})
	t.Run("exec first", func(t *testing.T) {
		r := NewRendezvous(wait, wait)
		defer r.Close()
		done := make(chan net.Conn, 1)
		go func() { c, _ := r.Claim(8); done <- c }()
		a, _ := pipe()
		r.Deliver(8, a)
		if got := <-done; got != a {
			t.Errorf("got %v, want the stream delivered", got)
		}
	})
	t.Run("unclaimed streams expire", func(t *testing.T) {
		r := NewRendezvous(d, d)
		defer r.Close()
		a, b := pipe()
		r.Deliver(9, a)
		waitEmpty(t, r)
		if !isClosed(b) {
			t.Error("expired stream left open")
		}
	})
	t.Run("exec gives up", func(t *testing.T) {
		r := NewRendezvous(d, d)
		defer r.Close()
		if _, err := r.Claim(10); err != ErrAttachTimeout {
			t.Errorf("got %v, want %v", err, ErrAttachTimeout)
		}
		late, lb := pipe()
		r.Deliver(10, late) // a latecomer is closed at once
		if !isClosed(lb) {
			t.Error("latecomer left open")
		}
		waitEmpty(t, r)
	})
	t.Run("duplicates", func(t *testing.T) {
		r := NewRendezvous(wait, wait)
		defer r.Close()
		a, ab := pipe()
		dup, db := pipe()
		r.Deliver(11, a)
		r.Deliver(11, dup)
		if !isClosed(db) {
			t.Error("duplicate stream left open")
		}
		if got, err := r.Claim(11); err != nil || got != a {
			t.Errorf("got %v, %v; want the first stream", got, err)
		}
		if isClosed(ab) {
			t.Error("first stream closed")
		}
	})
	t.Run("close", func(t *testing.T) {
		r := NewRendezvous(wait, wait)
		a, b := pipe()
		r.Deliver(12, a)
		done := make(chan error, 1)
		go func() { _, err := r.Claim(13); done <- err }()
		r.Close()
		if err := <-done; err != ErrSessionEnded {
			t.Errorf("claim: got %v, want %v", err, ErrSessionEnded)
		}
		if !isClosed(b) {
			t.Error("stream left open after close")
		}
	})
	t.Run("expected streams wait past the timeout", func(t *testing.T) {
		r := NewRendezvous(d, d)
		defer r.Close()
		if !r.Expect(14) {
			t.Fatal("Expect refused a fresh id")
		}
		if r.Expect(14) {
			t.Error("second Expect of a live id accepted")
		}
		a, b := pipe()
		r.Deliver(14, a)
		time.Sleep(3 * d) // longer than an unexpected stream would be kept
		got, err := r.Claim(14)
		if err != nil || got != a {
			t.Fatalf("got %v, %v; want the stream delivered", got, err)
		}
		if isClosed(b) {
			t.Error("expected stream was closed")
		}
		waitEmpty(t, r)
	})
	t.Run("abandon after expect", func(t *testing.T) {
		r := NewRendezvous(d, d)
		defer r.Close()
		r.Expect(15)
		a, b := pipe()
		r.Deliver(15, a)
		r.Abandon(15)
		if !isClosed(b) {
			t.Error("stream of an abandoned exec left open")
		}
		late, lb := pipe()
		r.Deliver(15, late)
		if !isClosed(lb) {
			t.Error("latecomer of an abandoned exec left open")
		}
		waitEmpty(t, r)
	})
}
