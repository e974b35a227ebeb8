// Package link makes the authenticated, encrypted, multiplexed connection
// between bpmaster and a bpslave: TCP, then TLS 1.3 with both ends pinned to
// an ed25519 key, then a yamux session whose streams carry pkg/wire.
//
// # Trust model
//
// The master holds master.key (created on first start in its key
// directory, /etc/beowulf/keys by default, mode 0700, files 0600); nodes
// know only its public half, master.pub, which the boot image carries. A
// node dials the master and checks the server key, so nothing but the
// master can run anything on a node.
//
// Each node has a key of its own, node.key, made by the node itself the
// first time bpslave starts (NodeKeys) and never sent anywhere: on a
// diskless node it lives in the RAM root and a new one is made at every
// boot; a simulated node keeps its own in its directory. The master
// accepts any node key in the handshake (Accept returns it) and pkg/master
// decides whether that key may speak for the node at that address: it
// pins node ↔ key on first contact and renews a pin only after the node
// network-booted (see pkg/master, "Node identity", for what an attacker
// on the cluster network can and cannot do). Nothing the master serves
// without authentication (the boot image) holds a private key.
//
// Certificates are self-signed wrappers around the keys, made at start;
// verification compares public keys, never names or CAs.
//
// # Why TLS + yamux
//
// Measured on this machine (one 512 MiB stream over loopback): TLS alone
// 1.35 GB/s; TLS+yamux 0.94 GB/s; TLS+smux 0.94 GB/s; x/crypto/ssh channel
// 0.94 GB/s. The three multiplexers are equal on throughput; yamux opens a
// stream with no round trip (ssh needs one per channel) and the same yamux
// runs without TLS on the local unix socket, so clients and nodes share one
// stream vocabulary.
//
// # Throughput
//
// yamux hands each frame (up to a stream's 4 MiB window) to its session
// writer as a header write and a body write; crypto/tls turns a body into
// 16 KiB records, one system call each. Under TLS sits a batchConn that
// collects the records of one frame and writes them together (see
// batch.go), which cut the system calls and reader wake-ups of a bpcp by
// about 60×. Bulk writers (the master's file sends and bpcp relay, bpcp
// itself, pkg/xfer) write 1 MiB at a time for the same reason: every
// Write is a frame and a hand-off between goroutines.
package link

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/beo-cluster/beo/pkg/atomicfile"

	"github.com/hashicorp/yamux"
)

// Key file names inside a key directory.
const (
	MasterKeyFile = "master.key"
	MasterPubFile = "master.pub"
	NodeKeyFile   = "node.key"
)

// Keys are what one end needs: its own private key and the peer's public key.
type Keys struct {
	Own  ed25519.PrivateKey
	Peer ed25519.PublicKey
}

// EnsureMasterKeys creates master.key and master.pub in dir if they are
// missing, and returns the master's keys (own = master; no peer key: the
// master checks each node's key itself).
func EnsureMasterKeys(dir string) (Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Keys{}, fmt.Errorf("key dir: %w", err)
	}
	mk, err := loadOrCreate(filepath.Join(dir, MasterKeyFile))
	if err != nil {
		return Keys{}, err
	}
	pub := filepath.Join(dir, MasterPubFile)
	if _, err := os.Stat(pub); errors.Is(err, os.ErrNotExist) {
		if err := writeAtomic(pub, MarshalPublic(mk.Public().(ed25519.PublicKey)), 0o644); err != nil {
			return Keys{}, err
		}
	}
	return Keys{Own: mk}, nil
}

// MarshalPublic encodes a public key as PEM (PKIX), as master.pub holds it.
func MarshalPublic(k ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil { // an ed25519 key always encodes
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePublic decodes what MarshalPublic wrote.
func ParsePublic(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	pk, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("not an ed25519 key")
	}
	return pk, nil
}

// NodeKeys loads a node's keys from dir: own = node.key, made there
// (mode 0600) if it is missing — a node's key never leaves it — and
// peer = master.pub.
func NodeKeys(dir string) (Keys, error) {
	b, err := os.ReadFile(filepath.Join(dir, MasterPubFile))
	if err != nil {
		return Keys{}, fmt.Errorf("read master key: %w", err)
	}
	pk, err := ParsePublic(b)
	if err != nil {
		return Keys{}, fmt.Errorf("%s: %w", MasterPubFile, err)
	}
	nk, err := loadOrCreate(filepath.Join(dir, NodeKeyFile))
	if err != nil {
		return Keys{}, err
	}
	return Keys{Own: nk, Peer: pk}, nil
}

func loadOrCreate(path string) (ed25519.PrivateKey, error) {
	k, err := loadPrivate(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	_, k, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate %s: %w", path, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", path, err)
	}
	if err := writeAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

func loadPrivate(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ed25519 key", path)
	}
	return ek, nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	if err := atomicfile.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func (k Keys) tlsConfig() (*tls.Config, error) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "beo"},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Own.Public(), k.Own)
	if err != nil {
		return nil, fmt.Errorf("self-sign: %w", err)
	}
	peer := k.Peer
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Full-size records from the first byte: small ones after an idle
		// second help a browser render early, not a bulk stream.
		DynamicRecordSizingDisabled: true,
		Certificates:                []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: k.Own}},
		ClientAuth:                  tls.RequireAnyClientCert,
		InsecureSkipVerify:          true, // replaced by the key pin below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("link: peer sent no certificate")
			}
			c, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return fmt.Errorf("link: peer certificate: %w", err)
			}
			pk, ok := c.PublicKey.(ed25519.PublicKey)
			switch {
			case !ok:
				return errors.New("link: peer key is not ed25519")
			case peer != nil && !pk.Equal(peer):
				return errors.New("link: peer key is not the pinned key")
			}
			return nil
		},
	}, nil
}

// WriteTimeout is how long a frame may wait to be written on a session
// before yamux gives up on it (its ConnectionWriteTimeout, 10 s by
// default). The time counts from the moment a stream queues the frame, so
// it includes waiting behind every other stream's frames: it measures how
// busy the session is, not whether the peer is alive. A cold `bpsh -a` on
// a thousand simulated nodes queued client frames for longer than 10 s
// and failed hundreds of jobs with "connection write timeout" on a link
// that was merely saturated. Liveness is the heartbeat's job (the
// master's Ping on the hello stream; a unix-socket peer that dies fails
// the write at once), so this valve only catches a peer that stops
// reading altogether while its connection stays open.
//
// A frame's body is at most what the stream's window allows; writers of
// bulk data (file sends, stdio relays) block on their stream's window,
// which is back-pressure without a timeout.
const WriteTimeout = 5 * time.Minute

// MuxConfig is the yamux configuration used on every beo session.
func MuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.AcceptBacklog = 8192
	c.MaxStreamWindowSize = 4 << 20
	c.EnableKeepAlive = false // the master's Ping on the hello stream is the heartbeat
	c.ConnectionWriteTimeout = WriteTimeout
	// A stream's ACK queues behind the same frames, and a late ACK makes
	// yamux close the whole session: the same bound.
	c.StreamOpenTimeout = WriteTimeout
	c.LogOutput = io.Discard
	return c
}

// MuxConfigLogged is MuxConfig with yamux's own complaints about its peer
// (malformed frames, protocol errors) logged to log at level Warn, so a
// server sees why it dropped a connection.
func MuxConfigLogged(log *slog.Logger) *yamux.Config {
	c := MuxConfig()
	c.LogOutput = nil
	c.Logger = muxLogger{log}
	return c
}

// muxLogger adapts slog to yamux's Logger. A peer that simply went away
// (a client that read its answer and closed) is routine and logged at
// debug level; anything else yamux complains about — a malformed frame,
// a protocol error — is a warning.
type muxLogger struct{ l *slog.Logger }

func (m muxLogger) Print(v ...any)   { m.log(fmt.Sprint(v...)) }
func (m muxLogger) Println(v ...any) { m.log(fmt.Sprintln(v...)) }
func (m muxLogger) Printf(format string, v ...any) {
	m.log(fmt.Sprintf(format, v...))
}

func (m muxLogger) log(msg string) {
	msg = strings.TrimSpace(msg)
	for _, gone := range []string{"broken pipe", "connection reset by peer", "use of closed network connection", ": EOF"} {
		if strings.Contains(msg, gone) {
			m.l.Debug("peer gone", "err", msg)
			return
		}
	}
	// One message, the detail as an attribute: a flood of junk varies
	// the detail, and ratelog throttles by message.
	m.l.Warn("session error from peer", "err", msg)
}

// Accept runs the server (master) side of the TLS handshake on c and
// returns a yamux session and the peer's key; yamux's complaints about
// the peer go to log. With k.Peer set only that key is accepted; without
// it any ed25519 key is, and the caller decides what it may do (the
// master checks its node pins). The handshake is bounded by ctx.
func Accept(ctx context.Context, c net.Conn, k Keys, log *slog.Logger) (*yamux.Session, ed25519.PublicKey, error) {
	cfg, err := k.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	raw := newBatchConn(c)
	tc := tls.Server(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, nil, fmt.Errorf("tls handshake from %s: %w", c.RemoteAddr(), err)
	}
	peer := tc.ConnectionState().PeerCertificates[0].PublicKey.(ed25519.PublicKey) // checked in the handshake
	mc := MuxConfig()
	if log != nil {
		mc = MuxConfigLogged(log)
	}
	s, err := yamux.Server(&batchedTLS{Conn: tc, raw: raw}, mc)
	return s, peer, err
}

// Dial connects to a master at addr and returns the client (node) session.
func Dial(ctx context.Context, d *net.Dialer, addr string, k Keys) (*yamux.Session, error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	s, err := dialConn(ctx, c, k)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return s, nil
}

// dialConn runs the client (node) side of the handshake on c.
func dialConn(ctx context.Context, c net.Conn, k Keys) (*yamux.Session, error) {
	cfg, err := k.tlsConfig()
	if err != nil {
		return nil, err
	}
	raw := newBatchConn(c)
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return yamux.Client(&batchedTLS{Conn: tc, raw: raw}, MuxConfig())
}
