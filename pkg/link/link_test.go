package link

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPinnedKeys(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	mk, err := EnsureMasterKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := EnsureMasterKeys(dir)
	if err != nil || !again.Own.Equal(mk.Own) {
		t.Fatalf("keys not stable across starts: %v", err)
	}
	nk, err := NodeKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureMasterKeys(other); err != nil {
		t.Fatal(err)
	}
	stranger, err := NodeKeys(other)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		node Keys
		ok   bool
	}{
		{"cluster node", nk, true},
		{"node of another cluster", stranger, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					srv <- err
					return
				}
				s, peer, err := Accept(ctx, c, mk, nil)
				if err != nil {
					c.Close()
					srv <- err
					return
				}
				if !peer.Equal(tc.node.Own.Public()) {
					t.Errorf("Accept returned key %x, want the node's", peer)
				}
				st, err := s.AcceptStream()
				if err == nil {
					io.Copy(st, st)
				}
				srv <- err
			}()
			s, err := Dial(ctx, &net.Dialer{}, ln.Addr().String(), tc.node)
			if err == nil {
				var st net.Conn
				st, err = s.OpenStream()
				if err == nil {
					st.Write([]byte("ping"))
					buf := make([]byte, 4)
					st.SetDeadline(time.Now().Add(3 * time.Second))
					_, err = io.ReadFull(st, buf)
				}
				s.Close()
			}
			serr := <-srv
			if tc.ok && (err != nil || serr != nil) {
				t.Errorf("got client %v, server %v; want a working session", err, serr)
			}
			if !tc.ok && err == nil && serr == nil {
				t.Errorf("a foreign node key was accepted")
			}
		})
	}
}

func TestMuxLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	l := muxLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	l.Printf("[ERR] yamux: Failed to write header: %v", "write unix @->/run/x.sock: write: broken pipe")
	l.Printf("[ERR] yamux: Failed to read header: %v", "EOF")
	if buf.Len() != 0 {
		t.Errorf("a peer going away was logged as a warning: %q", buf.String())
	}
	l.Printf("[ERR] yamux: Invalid protocol version: %d", 71)
	if !strings.Contains(buf.String(), "Invalid protocol version: 71") {
		t.Errorf("a protocol error was not a warning: got %q", buf.String())
	}
}

// TestNodeKeyStaysHome: a node makes its key once, keeps it, and a pinned
// Accept refuses any other.
func TestNodeKeyStaysHome(t *testing.T) {
	mdir := t.TempDir()
	mk, err := EnsureMasterKeys(mdir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mdir, NodeKeyFile)); err == nil {
		t.Errorf("the master made a node key")
	}
	pub, _ := os.ReadFile(filepath.Join(mdir, MasterPubFile))
	ndir := t.TempDir()
	os.WriteFile(filepath.Join(ndir, MasterPubFile), pub, 0o644)
	a, err := NodeKeys(ndir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NodeKeys(ndir)
	if err != nil || !a.Own.Equal(b.Own) {
		t.Fatalf("node key not kept: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(ndir, NodeKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("node.key: %v %v, want mode 0600", fi, err)
	}
	other, err := NodeKeys(t.TempDir() + "/missing")
	if err == nil {
		t.Errorf("NodeKeys without master.pub: %+v, want an error", other)
	}
	// A master pinned to node a refuses node c.
	cdir := t.TempDir()
	os.WriteFile(filepath.Join(cdir, MasterPubFile), pub, 0o644)
	c, _ := NodeKeys(cdir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		if conn, err := ln.Accept(); err == nil {
			if _, _, err := Accept(ctx, conn, Keys{Own: mk.Own, Peer: a.Own.Public().(ed25519.PublicKey)}, nil); err == nil {
				t.Errorf("pinned Accept took another key")
			}
			conn.Close()
		}
	}()
	if s, err := Dial(ctx, &net.Dialer{}, ln.Addr().String(), c); err == nil {
		st, err := s.OpenStream()
		if err == nil {
			st.SetDeadline(time.Now().Add(2 * time.Second))
			_, err = st.Read(make([]byte, 1))
		}
		if err == nil {
			t.Errorf("a node with another key got a session")
		}
		s.Close()
	}
}
