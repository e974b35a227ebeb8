package master

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/beo-cluster/beo/pkg/atomicfile"
)

// PinDir is where, under the key directory, the master records each
// node's key: one PEM public key per node, PinDir/N.pub.
const PinDir = "nodes"

// pins is the master's record of which key each node holds: node ↔ key,
// trusted on first use and renewed only by a network boot of the node
// (see the package doc, "Node identity"). Pins live in dir (written
// atomically, mode 0600 under a 0700 directory) so a master restart
// keeps them; dir "" keeps them in memory only (tests).
type pins struct {
	dir string

	mu     sync.Mutex
	keys   map[int]ed25519.PublicKey // the pins when dir is "" (else on disk)
	booted map[int]time.Time         // the node's last network boot seen
	proved map[int]time.Time         // the last time its pinned key spoke (a session's last pong)
	noted  map[int]time.Time         // last refusal written to node.N
}

// verdict is what check decided.
type verdict int

const (
	keyKnown      verdict = iota // the pinned key
	keyEnrolled                  // first contact (or after a forget): pinned now
	keyReenrolled                // a network boot replaced the pin
)

// check decides whether pub may speak for node n. live says whether n has
// a session now. A node with no pin gets pub pinned; a node pinned to
// another key is refused unless it network-booted since its pinned key
// last spoke and has no session (a diskless node makes a new key at
// every boot).
func (p *pins) check(n int, pub ed25519.PublicKey, live bool, now time.Time) (verdict, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old, err := p.load(n)
	if err != nil {
		return 0, err
	}
	switch {
	case old == nil:
		return keyEnrolled, p.store(n, pub)
	case old.Equal(pub):
		return keyKnown, nil
	case !live && p.booted[n].After(p.proved[n]):
		delete(p.booted, n)
		return keyReenrolled, p.store(n, pub)
	case live:
		return 0, fmt.Errorf("node %d is connected with its pinned key %s; refusing key %s", n, Fingerprint(old), Fingerprint(pub))
	default:
		return 0, fmt.Errorf("node %d is pinned to key %s, not %s, and has not network-booted since (bpctl -S %d --forget-key if its board was replaced)", n, Fingerprint(old), Fingerprint(pub), n)
	}
}

// boot records that node n is network-booting now.
func (p *pins) boot(n int, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.booted == nil {
		p.booted = map[int]time.Time{}
	}
	p.booted[n] = now
}

// spoke records that node n's pinned key was last heard at t.
func (p *pins) spoke(n int, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proved == nil {
		p.proved = map[int]time.Time{}
	}
	if t.After(p.proved[n]) {
		p.proved[n] = t
	}
}

// forget drops node n's pin: its next key is trusted on first use.
func (p *pins) forget(n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.keys, n)
	delete(p.booted, n)
	if p.dir == "" {
		return nil
	}
	if err := os.Remove(p.path(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("node %d: forget key: %w", n, err)
	}
	return nil
}

// noteRefusal reports whether a refusal for n should be written to
// node.N now: at most one a minute, so a claimant cannot fill the log.
func (p *pins) noteRefusal(n int, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.noted[n]) < time.Minute {
		return false
	}
	if p.noted == nil {
		p.noted = map[int]time.Time{}
	}
	p.noted[n] = now
	return true
}

func (p *pins) path(n int) string { return filepath.Join(p.dir, strconv.Itoa(n)+".pub") }

// load returns n's pin, nil if it has none; p.mu is held. A pin on
// disk is read at every check: the masters of one cluster share their
// key directory (pkg/config, "Multiple masters"), and a pin another
// master renewed counts here too.
func (p *pins) load(n int) (ed25519.PublicKey, error) {
	if p.dir == "" {
		return p.keys[n], nil
	}
	b, err := os.ReadFile(p.path(n))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node %d: read pinned key: %w", n, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", p.path(n))
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.path(n), err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ed25519 key", p.path(n))
	}
	return ek, nil
}

// store pins k for n; p.mu is held.
func (p *pins) store(n int, k ed25519.PublicKey) error {
	if p.dir != "" {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return fmt.Errorf("node %d: encode key: %w", n, err)
		}
		if err := os.MkdirAll(p.dir, 0o700); err != nil {
			return fmt.Errorf("node %d: pin key: %w", n, err)
		}
		if err := atomicfile.WriteFile(p.path(n), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
			return fmt.Errorf("node %d: pin key: %w", n, err)
		}
		return nil
	}
	if p.keys == nil {
		p.keys = map[int]ed25519.PublicKey{}
	}
	p.keys[n] = k
	return nil
}

// Fingerprint names a key in ssh-keygen -l's style: SHA256: and the
// unpadded base64 of the SHA-256 of its 32 bytes.
func Fingerprint(k ed25519.PublicKey) string {
	sum := sha256.Sum256(k)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// admitKey decides whether key may speak for node n, connecting from
// addr: "" admits it (pinning it if the node had no pin, or had
// network-booted since its pinned key last spoke), else the refusal.
func (m *Master) admitKey(n int, addr netip.Addr, key ed25519.PublicKey) string {
	m.mu.Lock()
	_, live := m.sessions[n]
	m.mu.Unlock()
	now := m.clock()
	v, err := m.pins.check(n, key, live, now)
	if err != nil {
		return err.Error()
	}
	switch v {
	case keyEnrolled:
		m.log.Info("node key pinned on first contact", "node", n, "addr", addr, "key", Fingerprint(key))
		m.nodeLog(n, "key %s pinned on first contact from %s", Fingerprint(key), addr)
	case keyReenrolled:
		m.log.Info("node key pinned after a network boot", "node", n, "addr", addr, "key", Fingerprint(key))
		m.nodeLog(n, "key %s pinned after a network boot, from %s", Fingerprint(key), addr)
	}
	m.pins.spoke(n, now)
	return ""
}

// Booting tells the master that node n is network-booting now (the boot
// server served it a boot file): the next new key it presents, once its
// old session is gone, replaces its pin.
func (m *Master) Booting(n int) { m.pins.boot(n, m.clock()) }

// ForgetKey drops node n's pinned key (bpctl --forget-key: a replaced
// board); the next key it presents is pinned on first use.
func (m *Master) ForgetKey(n int) error {
	if err := m.pins.forget(n); err != nil {
		return err
	}
	m.log.Info("node key forgotten", "node", n)
	m.nodeLog(n, "pinned key forgotten (bpctl --forget-key)")
	return nil
}
