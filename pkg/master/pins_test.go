package master

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func newKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// TestPins walks one node through its life: first contact, a rogue, a
// reboot, a crash whose boot came before the old session ended, a
// forget; and a master restart that keeps the pin.
func TestPins(t *testing.T) {
	dir := filepath.Join(t.TempDir(), PinDir)
	p := &pins{dir: dir}
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	a, b, c, rogue := newKey(t), newKey(t), newKey(t), newKey(t)
	step := func(name string, k ed25519.PublicKey, live bool, now time.Time, want verdict, ok bool) {
		t.Helper()
		got, err := p.check(3, k, live, now)
		if (err == nil) != ok || (ok && got != want) {
			t.Errorf("%s: got %v, %v; want %v, ok=%v", name, got, err, want, ok)
		}
		if err == nil {
			p.spoke(3, now)
		}
	}
	step("first contact", a, false, at(1), keyEnrolled, true)
	if fi, err := os.Stat(filepath.Join(dir, "3.pub")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pin file: %v %v", fi, err)
	}
	step("same key again", a, true, at(2), keyKnown, true)
	step("rogue while up", rogue, true, at(3), 0, false)
	step("rogue while down", rogue, false, at(4), 0, false)
	p.boot(3, at(5))  // a rogue's fake boot while the node is up…
	p.spoke(3, at(6)) // …is followed by the real node's next pong
	step("rogue after a stale boot", rogue, false, at(7), 0, false)
	p.boot(3, at(8)) // a real reboot: no pong after it
	step("rebooted, old session still live", b, true, at(9), 0, false)
	step("rebooted, old session gone", b, false, at(10), keyReenrolled, true)
	step("the boot counts once", c, false, at(11), 0, false)
	// A master restart reads the pin back.
	p2 := &pins{dir: dir}
	if got, err := p2.check(3, b, false, at(12)); err != nil || got != keyKnown {
		t.Errorf("after a restart: %v, %v; want the pinned key", got, err)
	}
	if err := p2.forget(3); err != nil {
		t.Fatal(err)
	}
	if got, err := p2.check(3, c, false, at(13)); err != nil || got != keyEnrolled {
		t.Errorf("after forget: %v, %v; want enrolled", got, err)
	}
}
