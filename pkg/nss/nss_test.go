package nss

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/pkg/config"
)

const testConfig = `nodes 4
iprange 10.54.0.100 10.54.0.103
hostrange 10.54.0.200 10.54.0.210
nodename n%N
nodename n%N-ipmi 0.0.1.0 ipmi
node 52:54:00:00:00:01
node 52:54:00:00:00:02
host 00:a0:d1:e9:87:ca 10.54.0.200 smartswitch sw0
host 00:a0:d1:e9:87:cb
`

func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	c, err := config.Parse("test", []byte(text), config.Options{})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return c
}

func TestFromConfig(t *testing.T) {
	d := FromConfig(parse(t, testConfig), netip.MustParseAddr("10.54.0.1"))
	if err := d.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	hosts := string(d.HostsBlock())
	for _, want := range []string{
		"10.54.0.1\tmaster .-1\n",
		"10.54.0.100\tn0 .0\n",
		"10.54.0.103\tn3 .3\n",
		"10.54.1.103\tn3-ipmi\n",
		"10.54.0.200\tsmartswitch sw0\n",
	} {
		if !strings.Contains(hosts, want) {
			t.Errorf("hosts block lacks %q:\n%s", want, hosts)
		}
	}
	if strings.Contains(hosts, "10.54.0.201") {
		t.Errorf("hosts block names a host with no name:\n%s", hosts)
	}
	ethers := string(d.EthersBlock())
	for _, want := range []string{"52:54:00:00:00:01\tn0\n", "52:54:00:00:00:02\tn1\n", "00:a0:d1:e9:87:ca\tsmartswitch\n", "00:a0:d1:e9:87:cb\t10.54.0.201\n"} {
		if !strings.Contains(ethers, want) {
			t.Errorf("ethers block lacks %q:\n%s", want, ethers)
		}
	}
	ng := string(d.NetgroupBlock())
	for _, want := range []string{"cluster (n0,,) (n1,,) (n2,,) (n3,,)\n", "ipmi (n0-ipmi,,) (n1-ipmi,,) (n2-ipmi,,) (n3-ipmi,,)\n"} {
		if !strings.Contains(ng, want) {
			t.Errorf("netgroup block lacks %q:\n%s", want, ng)
		}
	}
}

func TestFromConfigNoNodename(t *testing.T) {
	d := FromConfig(parse(t, "nodes 2\niprange 10.0.0.10 10.0.0.20\n"), netip.Addr{})
	got := string(d.HostsBlock())
	want := "10.0.0.10\t.0\n10.0.0.11\t.1\n"
	if got != want {
		t.Errorf("hosts: got %q, want %q", got, want)
	}
	if got, want := string(d.NetgroupBlock()), "cluster (.0,,) (.1,,)\n"; got != want {
		t.Errorf("netgroup: got %q, want %q", got, want)
	}
}

func TestReplaceBlock(t *testing.T) {
	blk := []byte("1.2.3.4\ta\n")
	full := BeginMarker + "\n1.2.3.4\ta\n" + EndMarker + "\n"
	for _, tc := range []struct {
		name, src, want string
		err             error
	}{
		{"empty", "", full, nil},
		{"append", "127.0.0.1 localhost\n", "127.0.0.1 localhost\n" + full, nil},
		{"no final newline", "127.0.0.1 localhost", "127.0.0.1 localhost\n" + full, nil},
		{"replace keeps around", "# admin\n" + BeginMarker + "\nold line\n" + EndMarker + "\n10.0.0.1 mine\n", "# admin\n" + full + "10.0.0.1 mine\n", nil},
		{"replace last without newline", "a\n" + beginPrefix + " old text\nx\n" + EndMarker, "a\n" + full, nil},
		{"begin only", "a\n" + BeginMarker + "\nx\n", "", ErrMarkers},
		{"end only", "a\n" + EndMarker + "\n", "", ErrMarkers},
		{"two blocks", full + full, "", ErrMarkers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReplaceBlock([]byte(tc.src), blk)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err: got %v, want %v", err, tc.err)
			}
			if err == nil && string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEnsureNSSwitch(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"empty", "", DefaultNSSwitch},
		{"debian", "# c\npasswd:         files systemd\ngroup: files\nhosts:          files dns\nethers: db files\nnetgroup:       nis\n",
			"# c\npasswd:         files systemd\ngroup: files\nhosts:          files dns\nethers: db files\nnetgroup: files nis\n"},
		{"missing lines", "hosts: dns # cmt\n", "hosts: files dns # cmt\npasswd: files\ngroup: files\nethers: files\nnetgroup: files\n"},
		{"no newline", "passwd: files\ngroup: files\nhosts: files\nethers: files\nnetgroup: files", "passwd: files\ngroup: files\nhosts: files\nethers: files\nnetgroup: files\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(EnsureNSSwitch([]byte(tc.src))); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWriteFiles(t *testing.T) {
	root := t.TempDir()
	etc := filepath.Join(root, "etc")
	os.MkdirAll(etc, 0o755)
	admin := "127.0.0.1\tlocalhost\n10.54.0.100 admins-own-name\n"
	os.WriteFile(filepath.Join(etc, "hosts"), []byte(admin), 0o640)
	d := FromConfig(parse(t, testConfig), netip.MustParseAddr("10.54.0.1"))
	changed, err := WriteFiles(root, d)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(changed), 4; got != want {
		t.Errorf("changed: got %v, want %d files", changed, want)
	}
	b, _ := os.ReadFile(filepath.Join(etc, "hosts"))
	if !bytes.HasPrefix(b, []byte(admin)) || !bytes.Contains(b, []byte("10.54.0.101\tn1 .1\n")) {
		t.Errorf("hosts:\n%s", b)
	}
	if fi, _ := os.Stat(filepath.Join(etc, "hosts")); fi.Mode().Perm() != 0o640 {
		t.Errorf("hosts mode: got %v, want 0640", fi.Mode().Perm())
	}
	changed, err = WriteFiles(root, d)
	if err != nil || len(changed) != 0 {
		t.Errorf("second write: changed %v, err %v; want nothing", changed, err)
	}
	// A broken block is an error and the file stays as it was.
	broken := admin + BeginMarker + "\n"
	os.WriteFile(filepath.Join(etc, "hosts"), []byte(broken), 0o644)
	if _, err := WriteFiles(root, d); !errors.Is(err, ErrMarkers) {
		t.Errorf("broken block: got %v, want ErrMarkers", err)
	}
	if b, _ := os.ReadFile(filepath.Join(etc, "hosts")); string(b) != broken {
		t.Errorf("broken file was changed:\n%s", b)
	}
	ents, _ := os.ReadDir(etc)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestUpsert(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, PasswdFile), []byte("root:x:0:0:root:/root:/bin/sh\n# comment\nold:x:1000:1000::/x:/bin/false\n"), 0o644)
	os.WriteFile(filepath.Join(root, GroupFile), []byte("root:x:0:\nusers:x:100:bob\n"), 0o644)
	alice := User{Name: "alice", UID: 1000, GID: 1000, Gecos: "Alice", Home: "/home/alice", Shell: "/bin/bash"}
	if ch, err := UpsertUser(root, alice); err != nil || !ch {
		t.Fatalf("UpsertUser: changed %v, err %v", ch, err)
	}
	if ch, err := UpsertUser(root, alice); err != nil || ch {
		t.Errorf("second UpsertUser: changed %v, err %v; want no change", ch, err)
	}
	b, _ := os.ReadFile(filepath.Join(root, PasswdFile))
	if got, want := string(b), "root:x:0:0:root:/root:/bin/sh\n# comment\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\n"; got != want {
		t.Errorf("passwd: got %q, want %q", got, want)
	}
	for _, g := range []Group{{Name: "alice", GID: 1000}, {Name: "users", GID: 100, Members: []string{"alice"}}} {
		if _, err := UpsertGroup(root, g); err != nil {
			t.Fatal(err)
		}
	}
	b, _ = os.ReadFile(filepath.Join(root, GroupFile))
	if got, want := string(b), "root:x:0:\nusers:x:100:alice,bob\nalice:x:1000:\n"; got != want {
		t.Errorf("group: got %q, want %q", got, want)
	}
	for _, bad := range []User{{Name: "a:b"}, {Name: "+nis"}, {Name: "x", Home: "/h\nevil:x:0:0::/:/bin/sh"}} {
		if _, err := UpsertUser(root, bad); err == nil {
			t.Errorf("UpsertUser(%+v): no error", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, d := range []Data{
		{Hosts: []Host{{Addr: netip.MustParseAddr("1.2.3.4"), Names: []string{"a b"}}}},
		{Hosts: []Host{{Addr: netip.MustParseAddr("1.2.3.4")}}},
		{Hosts: []Host{{Names: []string{"a"}}}},
		{Ethers: []Ether{{MAC: "zz", Name: "a"}}},
		{Netgroups: []Netgroup{{Name: "g", Hosts: []string{"(x"}}}},
		{Hosts: []Host{{Addr: netip.MustParseAddr("1.2.3.4"), Names: []string{"a\n5.6.7.8"}}}},
	} {
		if err := d.Validate(); err == nil {
			t.Errorf("Validate(%+v): no error", d)
		}
	}
}

func FuzzParseUser(f *testing.F) {
	f.Add("root:x:0:0:root:/root:/bin/sh")
	f.Add("a:x:1:2::/:")
	f.Add("users:x:100:bob,alice")
	f.Fuzz(func(t *testing.T, line string) {
		if u, err := ParseUser(line); err == nil {
			u2, err := ParseUser(u.Line())
			if err != nil || u2 != u {
				t.Errorf("round trip of %q: got %+v, %v; want %+v", line, u2, err, u)
			}
		}
		if g, err := ParseGroup(line); err == nil {
			g2, err := ParseGroup(g.Line())
			if err != nil || g2.Name != g.Name || g2.GID != g.GID || !slices.Equal(g2.Members, g.Members) {
				t.Errorf("round trip of %q: got %+v, %v; want %+v", line, g2, err, g)
			}
		}
	})
}

func FuzzReplaceBlock(f *testing.F) {
	f.Add("127.0.0.1 localhost\n", "1.2.3.4 a\n")
	f.Add("a\n"+BeginMarker+"\nx\n"+EndMarker+"\nb", "")
	f.Fuzz(func(t *testing.T, src, blk string) {
		if strings.Contains(blk, beginPrefix) || strings.Contains(blk, EndMarker) {
			return
		}
		out, err := ReplaceBlock([]byte(src), []byte(blk))
		if err != nil {
			return
		}
		// Idempotent, and the admin's text before the block survives.
		again, err := ReplaceBlock(out, []byte(blk))
		if err != nil || !bytes.Equal(again, out) {
			t.Errorf("not idempotent: %q → %q → %q (%v)", src, out, again, err)
		}
		if i := strings.Index(src, beginPrefix); i >= 0 && !bytes.HasPrefix(out, []byte(src[:i])) {
			t.Errorf("text before the block changed: %q → %q", src, out)
		}
	})
}
