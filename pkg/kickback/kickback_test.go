package kickback

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/nss"
)

func TestReadRequest(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Request
		wantErr string
	}{
		{`{"v":1,"op":"names"}` + "\n", Request{V: 1, Op: OpNames}, ""},
		{`{"v":1,"op":"user","uid":7}` + "\n", Request{V: 1, Op: OpUser, UID: 7}, ""},
		{`{"v":2,"op":"names"}` + "\n", Request{}, "version 2"},
		{`{"v":1,"op":"shadow"}` + "\n", Request{}, "unknown op"},
		{`{"v":1,"op":"names","x":1}` + "\n", Request{}, "unknown field"},
		{`{"v":1,"op":"names"} {}` + "\n", Request{}, "after the object"},
		{`{"v":1,"op":"names"}`, Request{}, "unexpected EOF"},
		{`{"v":1,"op":"user","uid":-1}` + "\n", Request{}, "bad message"},
		{strings.Repeat(" ", MaxRequest) + "\n", Request{}, "too long"},
		{"garbage\n", Request{}, "bad message"},
	} {
		got, err := ReadRequest(bufio.NewReader(strings.NewReader(tc.in)))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: got err %v, want one containing %q", tc.in, err, tc.wantErr)
		case tc.wantErr == "" && got != tc.want:
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func FuzzReadRequest(f *testing.F) {
	f.Add([]byte(`{"v":1,"op":"names"}` + "\n"))
	f.Add([]byte(`{"v":1,"op":"user","uid":1000}` + "\n" + `{"v":1,"op":"names"}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(strings.NewReader(string(b)))
		for range 4 {
			q, err := ReadRequest(r)
			if err != nil {
				return
			}
			if q.V != Version || (q.Op != OpNames && q.Op != OpUser) {
				t.Fatalf("accepted %+v", q)
			}
		}
	})
}

func FuzzReadReply(f *testing.F) {
	f.Add([]byte(`{"v":1,"names":{"hosts":[{"addr":"10.0.0.1","names":["master",".-1"]}],"netgroups":[{"name":"cluster","hosts":["n0"]}]}}` + "\n"))
	f.Add([]byte(`{"v":1,"user":{"name":"a","uid":1,"gid":1,"home":"/","shell":"/bin/sh"},"groups":[{"name":"a","gid":1}]}` + "\n"))
	f.Add([]byte(`{"v":1,"err":"no"}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ReadReply(bufio.NewReader(strings.NewReader(string(b))))
		if err != nil {
			return
		}
		// Whatever is accepted must be safe to write into the files.
		if p.Names != nil {
			if _, err := nss.ReplaceBlock(nil, p.Names.HostsBlock()); err != nil {
				t.Fatal(err)
			}
			for _, h := range p.Names.Hosts {
				for _, n := range h.Names {
					if strings.ContainsAny(n, " \t\n#") {
						t.Fatalf("accepted name %q", n)
					}
				}
			}
		}
		if p.User != nil && strings.Count(p.User.Line(), ":") != 6 {
			t.Fatalf("accepted user %+v", *p.User)
		}
	})
}

const loopConfig = `nodes 8
iprange 127.0.0.10 127.0.0.17
nodename n%N
`

type fixture struct {
	addr string
	root string // the master's user files
}

// startDaemon runs a daemon on loopback whose node 2 (127.0.0.12) has a
// job of uid 4242 and nothing else.
func startDaemon(t *testing.T) fixture {
	t.Helper()
	cfg, err := config.Parse("test", []byte(loopConfig), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, nss.PasswdFile), []byte("root:x:0:0:root:/root:/bin/sh\nalice:x:4242:4242:Alice:/home/alice:/bin/bash\nbob:x:4243:100::/home/bob:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, nss.GroupFile), []byte("root:x:0:\nusers:x:100:bob,alice\nalice:x:4242:\nwheel:x:10:bob\n"), 0o644)
	d, err := New(Config{
		Cluster: func() *config.Config { return cfg },
		Master:  netip.MustParseAddr("127.0.0.1"),
		UsesUID: func(node int, uid uint32) bool { return node == 2 && uid == 4242 },
		Users:   Files{Root: root},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return fixture{addr: ln.Addr().String(), root: root}
}

func from(src string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
}

func TestDaemonUsers(t *testing.T) {
	f := startDaemon(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, src string
		uid       uint32
		wantErr   string
	}{
		{"job owner", "127.0.0.12", 4242, ""},
		{"other user", "127.0.0.12", 4243, "node 2 has no job of uid 4243"},
		{"root", "127.0.0.12", 0, "no job of uid 0"},
		{"other node", "127.0.0.13", 4242, "node 3 has no job"},
		{"not a node", "127.0.0.1", 4242, "is not a node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Client{Addr: f.addr, Dialer: from(tc.src)}
			u, gs, err := c.User(ctx, tc.uid)
			if tc.wantErr != "" {
				var re *RemoteError
				if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got err %v, want a refusal containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := u.Line(), "alice:x:4242:4242:Alice:/home/alice:/bin/bash"; got != want {
				t.Errorf("user: got %q, want %q", got, want)
			}
			var lines []string
			for _, g := range gs {
				lines = append(lines, g.Line())
			}
			// bob is trimmed from users; wheel (bob only) is not alice's.
			if got, want := strings.Join(lines, " "), "users:x:100:alice alice:x:4242:"; got != want {
				t.Errorf("groups: got %q, want %q", got, want)
			}
		})
	}
}

func TestProxy(t *testing.T) {
	f := startDaemon(t)
	node := t.TempDir()
	os.MkdirAll(filepath.Join(node, "etc"), 0o755)
	os.WriteFile(filepath.Join(node, nss.HostsFile), []byte("127.0.0.1 localhost\n"), 0o644)
	os.WriteFile(filepath.Join(node, nss.PasswdFile), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	p := &Proxy{Client: Client{Addr: f.addr, Dialer: from("127.0.0.12")}, Root: node, Refresh: time.Hour}
	sock := filepath.Join(t.TempDir(), "kb.sock")
	ln, err := ListenLocal(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("proxy did not stop")
		}
	}()
	// Names arrive without being asked.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(node, nss.HostsFile))
		ng, _ := os.ReadFile(filepath.Join(node, nss.NetgroupFile))
		if strings.Contains(string(b), "127.0.0.12\tn2 .2\n") && strings.HasPrefix(string(b), "127.0.0.1 localhost\n") && strings.Contains(string(ng), "cluster (n0,,)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hosts never written:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v %v, want 0600", fi, err)
	}
	if err := Ensure(ctx, sock, 4242); err != nil {
		t.Fatalf("Ensure(4242): %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(node, nss.PasswdFile))
	if got, want := string(b), "root:x:0:0:root:/root:/bin/sh\nalice:x:4242:4242:Alice:/home/alice:/bin/bash\n"; got != want {
		t.Errorf("passwd: got %q, want %q", got, want)
	}
	if err := Ensure(ctx, sock, 4243); err == nil || !strings.Contains(err.Error(), "no job of uid 4243") {
		t.Errorf("Ensure(4243): got %v, want a refusal", err)
	}
	if b2, _ := os.ReadFile(filepath.Join(node, nss.PasswdFile)); string(b2) != string(b) {
		t.Errorf("refused request changed passwd: %q", b2)
	}
}

func TestGetent(t *testing.T) {
	if _, err := exec.LookPath("getent"); err != nil {
		t.Skip("no getent")
	}
	u, gs, err := Getent{}.LookupUID(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "root" || u.UID != 0 {
		t.Errorf("uid 0: got %+v", u)
	}
	if len(gs) == 0 || gs[0].GID != 0 {
		t.Errorf("groups of root: got %+v, want the primary group first", gs)
	}
	if _, _, err := (Getent{}).LookupUID(context.Background(), 3999999999); !errors.Is(err, ErrNoUser) {
		t.Errorf("unknown uid: got %v, want ErrNoUser", err)
	}
}

func TestBadInput(t *testing.T) {
	f := startDaemon(t)
	for _, in := range []string{"garbage\n", `{"v":9,"op":"names"}` + "\n", strings.Repeat("x", 10000)} {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(in))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if !strings.Contains(line, `"err"`) {
			t.Errorf("%.20q: got %q, want an error reply", in, line)
		}
		c.Close()
	}
	// The daemon still answers.
	if _, err := (&Client{Addr: f.addr}).Names(context.Background()); err != nil {
		t.Errorf("after bad input: %v", err)
	}
}

// TestPerAddr: connections held open from one address (a user on a
// node) take that address's places only: another node is still
// answered.
func TestPerAddr(t *testing.T) {
	f := startDaemon(t)
	for range maxPerAddr {
		c, err := from("127.0.0.13").Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// The next one from that address is closed unanswered.
	c := Client{Addr: f.addr, Dialer: from("127.0.0.13"), Timeout: 5 * time.Second}
	if _, err := c.Names(context.Background()); err == nil {
		t.Errorf("connection %d from 127.0.0.13 answered", maxPerAddr+1)
	}
	c.Dialer = from("127.0.0.12")
	if d, err := c.Names(context.Background()); err != nil || len(d.Hosts) == 0 {
		t.Errorf("127.0.0.12 behind a flood from 127.0.0.13: %+v, %v", d, err)
	}
}
