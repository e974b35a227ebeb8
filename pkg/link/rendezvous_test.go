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

	t.Run("streams first", func(t *testing.T) {
		r := NewRendezvous(wait, wait)
		defer r.Close()
		for fd := range 3 {
			a, _ := pipe()
			r.Deliver(7, fd, a)
		}
		got, err := r.Claim(7)
		if err != nil || got[0] == nil || got[2] == nil || r.Pending() != 0 {
			t.Errorf("got %v, %v, %d pending", got, err, r.Pending())
		}
	})
	t.Run("exec first", func(t *testing.T) {
		r := NewRendezvous(wait, wait)
		defer r.Close()
		done := make(chan error, 1)
		go func() { _, err := r.Claim(8); done <- err }()
		for fd := range 3 {
			a, _ := pipe()
			r.Deliver(8, fd, a)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	t.Run("unclaimed streams expire", func(t *testing.T) {
		r := NewRendezvous(d, d)
		defer r.Close()
		a, b := pipe()
		r.Deliver(9, 1, a)
		waitEmpty(t, r)
		if !isClosed(b) {
			t.Error("expired stream left open")
		}
	})
	t.Run("exec gives up", func(t *testing.T) {
		r := NewRendezvous(d, d)
		defer r.Close()
		a, b := pipe()
		r.Deliver(10, 0, a)
		if _, err := r.Claim(10); err != ErrAttachTimeout {
			t.Errorf("got %v, want %v", err, ErrAttachTimeout)
		}
		if !isClosed(b) {
			t.Error("stream of a failed exec left open")
		}
		late, lb := pipe()
		r.Deliver(10, 1, late) // a latecomer is closed at once
		if !isClosed(lb) {
			t.Error("latecomer left open")
		}
		waitEmpty(t, r)
	})
	t.Run("duplicates and bad fds", func(t *testing.T) {
		r := NewRendezvous(wait, wait)
		defer r.Close()
		a, _ := pipe()
		dup, db := pipe()
		bad, bb := pipe()
		r.Deliver(11, 2, a)
		r.Deliver(11, 2, dup)
		r.Deliver(11, 3, bad)
		if !isClosed(db) || !isClosed(bb) {
			t.Error("duplicate or bad stream left open")
		}
	})
	t.Run("close", func(t *testing.T) {
		r := NewRendezvous(wait, wait)
		a, b := pipe()
		r.Deliver(12, 0, a)
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
		if !r.Expect(14, AllFDs) {
			t.Fatal("Expect refused a fresh id")
		}
		if r.Expect(14, AllFDs) {
			t.Error("second Expect of a live id accepted")
		}
		a, b := pipe()
		r.Deliver(14, 0, a)
		time.Sleep(3 * d) // longer than an unexpected stream would be kept
		for fd := 1; fd < 3; fd++ {
			c, _ := pipe()
			r.Deliver(14, fd, c)
		}
		got, err := r.Claim(14)
		if err != nil || got[0] != a {
			t.Fatalf("got %v, %v; want the stream delivered first", got, err)
		}
		if isClosed(b) {
			t.Error("expected stream was closed")
		}
		waitEmpty(t, r)
	})
	t.Run("abandon after expect", func(t *testing.T) {
		r := NewRendezvous(d, d)
		defer r.Close()
		r.Expect(15, AllFDs)
		a, b := pipe()
		r.Deliver(15, 2, a)
		r.Abandon(15)
		if !isClosed(b) {
			t.Error("stream of an abandoned exec left open")
		}
		waitEmpty(t, r)
	})
	t.Run("without stdin", func(t *testing.T) {
		r := NewRendezvous(wait, d)
		defer r.Close()
		in, inb := pipe()
		r.Deliver(16, 0, in) // arrives before the exec says it has none
		if !r.Expect(16, [3]bool{false, true, true}) {
			t.Fatal("Expect refused")
		}
		if !isClosed(inb) {
			t.Error("unwanted stdin stream left open")
		}
		for fd := 1; fd < 3; fd++ {
			c, _ := pipe()
			r.Deliver(16, fd, c)
		}
		late, lb := pipe()
		r.Deliver(16, 0, late)
		if !isClosed(lb) {
			t.Error("unwanted late stdin stream left open")
		}
		got, err := r.Claim(16)
		if err != nil || got[0] != nil || got[1] == nil || got[2] == nil {
			t.Errorf("got %v, %v; want stdout and stderr only", got, err)
		}
	})
}
