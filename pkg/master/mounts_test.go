package master

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/link"
	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/hashicorp/yamux"
)

// mountNode connects a fake node 0 to a master whose Config.Mounts is
// mounts; the node answers each OpMount with answer(i, mount) and stops
// the list after a fatal failure, as bpslave does (a negative Took: it
// closes the stream without answering). It returns the final
// state (once not boot), node.0's text and the number of OpMount streams.
func mountNode(t *testing.T, mounts func(int, netip.Addr) ([]wire.Mount, []string, error), answer func(int, wire.Mount) wire.MountResult) (nodes.State, string, int64) {
	t.Helper()
	dir := t.TempDir()
	keys, err := link.EnsureMasterKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	nkeys, err := link.NodeKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(dir, "log")
	os.Mkdir(logDir, 0o755)
	m, err := New(Config{
		Nodes:       []NodeDef{{Num: 0, Addr: netip.MustParseAddr("127.0.0.1")}},
		PingTimeout: time.Minute, Keys: keys, LogDir: logDir, Mounts: mounts,
		Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { m.ServeNodes(ctx, nl); close(served) }()
	defer func() { cancel(); <-served }()
	mux, _ := helloNode(ctx, t, nl.Addr().String(), nkeys)
	defer mux.Close()
	var streams atomic.Int64
	go func() {
		for {
			st, err := mux.AcceptStream()
			if err != nil {
				return
			}
			go func() {
				defer st.Close()
				var h wire.Header
				if wire.Read(st, &h) != nil || h.Op != wire.OpMount {
					return
				}
				streams.Add(1)
				for i, mt := range h.Mount.Mounts {
					r := answer(i, mt)
					if r.Took < 0 { // the node goes quiet
						return
					}
					r.Index = i
					if wire.Write(st, r) != nil || r.Err != "" && mt.Fatal {
						return
					}
				}
			}()
		}
	}()
	deadline := time.Now().Add(wait)
	for {
		nd, _ := m.Table().Get(0)
		if nd.State != nodes.Down && nd.State != nodes.Boot {
			b, _ := os.ReadFile(filepath.Join(logDir, "node.0"))
			return nd.State, string(b), streams.Load()
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 0 still %s", nd.State)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// scratch is fstab line 2, /dev/vda2 on /scratch (ext4).
func scratch(fatal bool) wire.Mount {
	return wire.Mount{Source: "/dev/vda2", Target: "/scratch", Type: "ext4", Fatal: fatal, File: "/etc/beowulf/fstab", Line: 2}
}

func TestMountFS(t *testing.T) {
	lines := []wire.Mount{
		{Source: "10.54.0.1:/home", Target: "/home", Type: "nfs4", File: "/etc/beowulf/fstab", Line: 3},
		{Source: "10.54.0.1:/usr", Target: "/usr", Type: "nfs4", Fatal: true, File: "/etc/beowulf/fstab", Line: 4},
		{Source: "none", Target: "/proc", Type: "proc", Fatal: true, File: "/etc/beowulf/fstab", Line: 5},
	}
	give := func(ms []wire.Mount, notes []string, err error) func(int, netip.Addr) ([]wire.Mount, []string, error) {
		return func(n int, a netip.Addr) ([]wire.Mount, []string, error) {
			if n != 0 || a != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("Mounts(%d, %s), want node 0 at 127.0.0.1", n, a)
			}
			return ms, notes, err
		}
	}
	ok := func(i int, m wire.Mount) wire.MountResult {
		return wire.MountResult{Already: m.Type == "proc", Took: 12 * time.Millisecond}
	}
	fail := func(target, msg string) func(int, wire.Mount) wire.MountResult {
		return func(i int, m wire.Mount) wire.MountResult {
			if m.Target == target {
				return wire.MountResult{Err: msg}
			}
			return ok(i, m)
		}
	}
	tests := []struct {
		name    string
		mounts  func(int, netip.Addr) ([]wire.Mount, []string, error)
		answer  func(int, wire.Mount) wire.MountResult
		state   nodes.State
		streams int64
		log     []string
		notLog  []string
	}{
		{"all mounted", give(lines, nil, nil), ok, nodes.Up, 1, []string{
			"/etc/beowulf/fstab:3: mounted 10.54.0.1:/home on /home (nfs4) in 12ms",
			"/etc/beowulf/fstab:5: none on /proc (proc): mounted already"}, nil},
		{"nonfatal failure", give(lines, nil, nil), fail("/home", "mount 10.54.0.1:/home on /home (nfs4): no such file or directory"), nodes.Up, 1, []string{
			"/etc/beowulf/fstab:3: nonfatal mount failed: mount 10.54.0.1:/home on /home (nfs4): no such file or directory",
			"/etc/beowulf/fstab:4: mounted"}, nil},
		{"fatal failure", give(lines, nil, nil), fail("/usr", "permission denied"), nodes.Error, 1, []string{
			"/etc/beowulf/fstab:4: mount failed: permission denied; node error"}, []string{"fstab:5"}},
		{"notes", give(lines[2:], []string{"no NFS server runs on the master"}, nil), ok, nodes.Up, 1, []string{
			"no NFS server runs on the master"}, nil},
		{"unreadable fstab", give(nil, nil, errors.New("/etc/beowulf/fstab.0:2: 2 fields")), ok, nodes.Error, 0, []string{
			"fstab: /etc/beowulf/fstab.0:2: 2 fields; node error"}, nil},
		{"no lines, no stream", give(nil, nil, nil), ok, nodes.Up, 0, nil, []string{"mount"}},
		{"node stops answering", give(lines, nil, nil), func(i int, m wire.Mount) wire.MountResult {
			if i == 1 {
				return wire.MountResult{Took: -1}
			}
			return ok(i, m)
		}, nodes.Error, 1, []string{"mounts: /etc/beowulf/fstab:4 and after: the node stopped answering; node error"}, nil},
		// A local partition is probed on the node before any mount (this
		// fake node runs nothing: the probe fails), as pkg/localfs says.
		{"local disk, fatal", give(append([]wire.Mount{scratch(true)}, lines...), nil, nil), ok, nodes.Error, 0, []string{
			"/etc/beowulf/fstab:2: /dev/vda2: probe /dev/vda2: ", "; node error"}, []string{"fstab:3"}},
		{"local disk, nonfatal", give(append([]wire.Mount{scratch(false)}, lines...), nil, nil), func(i int, m wire.Mount) wire.MountResult {
			if m.Target == "/scratch" {
				t.Errorf("the failed nonfatal local line was mounted")
			}
			return ok(i, m)
		}, nodes.Up, 1, []string{"/etc/beowulf/fstab:2: nonfatal: /dev/vda2: probe /dev/vda2: ", "/etc/beowulf/fstab:3: mounted"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, log, streams := mountNode(t, tt.mounts, tt.answer)
			t.Logf("node.0:\n%s", log)
			if state != tt.state || streams != tt.streams {
				t.Errorf("state %s after %d OpMount streams, want %s after %d\nnode.0:\n%s", state, streams, tt.state, tt.streams, log)
			}
			for _, w := range tt.log {
				if !strings.Contains(log, w) {
					t.Errorf("node.0 lacks %q:\n%s", w, log)
				}
			}
			for _, w := range tt.notLog {
				if strings.Contains(log, w) {
					t.Errorf("node.0 has %q:\n%s", w, log)
				}
			}
		})
	}
}

// TestUsrEtc: copies of the master's /etc paths (links, files, whole
// directories) go to a node that mirrors the master's /usr, and only to
// such a node.
func TestUsrEtc(t *testing.T) {
	dir := t.TempDir()
	alt, ompi := filepath.Join(dir, "alternatives"), filepath.Join(dir, "openmpi")
	os.Mkdir(alt, 0o755)
	os.Mkdir(ompi, 0o755)
	os.Symlink("/usr/bin/mpirun.openmpi", filepath.Join(alt, "mpirun"))
	os.WriteFile(filepath.Join(ompi, "openmpi-mca-params.conf"), []byte("mtl = ^ofi\n"), 0o640)
	os.WriteFile(filepath.Join(ompi, "huge"), make([]byte, maxEtcFile+1), 0o644)
	paths := []string{alt, ompi, filepath.Join(dir, "missing")}
	usr := wire.Mount{Source: "10.54.0.1:/usr", Target: "/usr", Type: "nfs4", Mirror: true}
	home := wire.Mount{Source: "10.54.0.1:/home", Target: "/home", Type: "nfs4", Mirror: true}
	elsewhere := wire.Mount{Source: "10.54.0.1:/usr", Target: "/mnt/usr", Type: "nfs4"}
	got := UsrEtc(paths, []wire.Mount{home, usr})
	want := []wire.EtcFile{
		{Path: filepath.Join(alt, "mpirun"), Link: "/usr/bin/mpirun.openmpi"},
		{Path: filepath.Join(ompi, "openmpi-mca-params.conf"), Data: []byte("mtl = ^ofi\n"), Mode: 0o640},
	}
	if len(got) != len(want) {
		t.Fatalf("/usr mirrored: got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Path != want[i].Path || got[i].Link != want[i].Link || string(got[i].Data) != string(want[i].Data) || got[i].Mode != want[i].Mode {
			t.Errorf("file %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	for name, ms := range map[string][]wire.Mount{"no /usr": {home}, "/usr elsewhere": {elsewhere}} {
		if got := UsrEtc(paths, ms); got != nil {
			t.Errorf("%s: got %+v, want nothing", name, got)
		}
	}
	if got := UsrEtc(nil, []wire.Mount{usr}); got != nil {
		t.Errorf("no paths: got %+v", got)
	}
}

// TestResetConnsOnLoss: a node that stops answering the heartbeat has
// the master's connections to it reset (Config.ResetConns); one whose
// connection closes does not, nor one back with a new session before
// the reset is due (a reset would end that session's connection too).
func TestResetConnsOnLoss(t *testing.T) {
	for _, tt := range []struct {
		name  string
		close bool // the node closes its connection instead of going quiet
		back  bool // and connects again at once, after it is down
		want  int
	}{{"no heartbeat", false, false, 1}, {"connection closed", true, false, 0}, {"back before the reset", false, true, 0}} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			keys, _ := link.EnsureMasterKeys(dir)
			nkeys, _ := link.NodeKeys(dir)
			resets := make(chan netip.Addr, 4)
			m, err := New(Config{
				Nodes: []NodeDef{{Num: 0, Addr: netip.MustParseAddr("127.0.0.1")}},
				// 1 s: the new session of "back before the reset" must live
				// through resetDelay on a loaded machine (200 ms flaked).
				PingTimeout: time.Second, Keys: keys, Log: slog.New(slog.DiscardHandler),
				ResetConns: func(a netip.Addr) (int, error) { resets <- a; return 0, nil },
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			nl, _ := net.Listen("tcp", "127.0.0.1:0")
			served := make(chan struct{})
			go func() { m.ServeNodes(ctx, nl); close(served) }()
			defer func() { cancel(); <-served }()
			connect := func() (*yamux.Session, net.Conn) { return helloNode(ctx, t, nl.Addr().String(), nkeys) }
			mux, _ := connect()
			if tt.close {
				mux.Close()
			} // else: never answer a ping
			deadline := time.Now().Add(10 * time.Second)
			for {
				if nd, _ := m.Table().Get(0); nd.State == nodes.Down {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("node 0 never went down")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if tt.back { // a node that answers its pings this time
				_, hello := connect()
				answerPings(hello, nil)
			}
			// A reset is due resetDelay after the session ended: wait for
			// it with room for a loaded machine (-race, other packages'
			// tests), or past it when none may come.
			got := 0
			window := resetDelay + 2*time.Second
			if tt.want > 0 {
				window = resetDelay + 10*time.Second
			}
			timeout := time.After(window)
		wait:
			for {
				select {
				case a := <-resets:
					got++
					if a != netip.MustParseAddr("127.0.0.1") {
						t.Errorf("ResetConns(%v), want node 0's address", a)
					}
					if tt.want > 0 && got == tt.want {
						break wait
					}
				case <-timeout:
					break wait
				}
			}
			if got != tt.want {
				t.Errorf("ResetConns called %d times, want %d", got, tt.want)
			}
		})
	}
}
