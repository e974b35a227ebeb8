package nfs

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/pkg/fstab"
	"github.com/beo-cluster/beo/pkg/wire"
)

var master = netip.MustParseAddr("10.54.0.1")

func TestPrefixes(t *testing.T) {
	tests := []struct {
		from, to string
		want     string
	}{
		{"10.54.0.100", "10.54.0.163", "10.54.0.100/30 10.54.0.104/29 10.54.0.112/28 10.54.0.128/27 10.54.0.160/30"},
		{"10.0.0.0", "10.0.0.255", "10.0.0.0/24"},
		{"10.0.0.5", "10.0.0.5", "10.0.0.5/32"},
		{"0.0.0.0", "255.255.255.255", "0.0.0.0/0"},
		{"10.0.0.255", "10.0.1.0", "10.0.0.255/32 10.0.1.0/32"},
		{"10.0.0.2", "10.0.0.1", ""},
	}
	for _, tt := range tests {
		got := fmt.Sprint(Prefixes(netip.MustParseAddr(tt.from), netip.MustParseAddr(tt.to)))
		if want := "[" + tt.want + "]"; got != want {
			t.Errorf("Prefixes(%s, %s) = %s, want %s", tt.from, tt.to, got, want)
		}
	}
	// Every address of a range is covered, none outside.
	ps := Prefixes(netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("10.1.9.77"))
	for a := netip.MustParseAddr("10.1.2.0"); a.Less(netip.MustParseAddr("10.1.10.0")); a = a.Next() {
		in := false
		for _, p := range ps {
			in = in || p.Contains(a)
		}
		want := !a.Less(netip.MustParseAddr("10.1.2.3")) && !netip.MustParseAddr("10.1.9.77").Less(a)
		if in != want {
			t.Fatalf("%s covered %v, want %v (%v)", a, in, want, ps)
		}
	}
}

func parse(t *testing.T, file, text string) *fstab.Table {
	t.Helper()
	tab, _ := fstab.Parse(file, []byte(text))
	return tab
}

func TestExports(t *testing.T) {
	clients := []netip.Prefix{netip.MustParsePrefix("10.54.0.96/27")}
	tabs := []*fstab.Table{
		parse(t, "fstab", "$MASTER:/home /home nfs ro\n$MASTER:/usr /usr nfs ro\n10.54.0.2:/data /data nfs\nnone /proc proc\n$MASTER:/opt /opt nfs ro,noauto\n"),
		parse(t, "fstab.3", "10.54.0.1:/home/ /home nfs4 rw,nonfatal\n"),
		nil,
	}
	got := Exports(tabs, master, clients)
	want := []Export{
		{Path: "/home", RW: true, Clients: clients, AnonUID: Nobody, AnonGID: Nobody, Lines: []string{"fstab:1", "fstab.3:1"}},
		{Path: "/usr", Clients: clients, AnonUID: Nobody, AnonGID: Nobody, Lines: []string{"fstab:2"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Exports =\n%+v\nwant\n%+v", got, want)
	}
}

func TestServable(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	os.Symlink(dir, filepath.Join(dir, "link"))
	in := []Export{{Path: dir}, {Path: filepath.Join(dir, "link")}, {Path: filepath.Join(dir, "file")}, {Path: filepath.Join(dir, "none")}, {Path: "/"}}
	ok, refused := Servable(in)
	if len(ok) != 2 || ok[0].Path != dir || ok[1].Path != filepath.Join(dir, "link") {
		t.Errorf("servable %+v, want the directory and the link to it", ok)
	}
	want := map[string]string{
		filepath.Join(dir, "file"): "not a directory on the master",
		filepath.Join(dir, "none"): "no such directory on the master",
		"/":                        "the master's root is never exported",
	}
	if !reflect.DeepEqual(refused, want) {
		t.Errorf("refused %v, want %v", refused, want)
	}
}

func TestExportsFile(t *testing.T) {
	x := []Export{
		{Path: "/home", RW: true, Clients: []netip.Prefix{netip.MustParsePrefix("10.54.0.100/30"), netip.MustParsePrefix("10.54.0.104/32")}, AnonUID: 65534, AnonGID: 65534, Lines: []string{"fstab:1"}},
		{Path: "/srv/a b", Clients: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, AnonUID: 65534, AnonGID: 65534, Lines: []string{"fstab:2"}},
	}
	got := string(ExportsFile(x))
	for _, w := range []string{
		"# for fstab:1\n/home 10.54.0.100/30(rw,sync,no_subtree_check,root_squash,anonuid=65534,anongid=65534,sec=sys) 10.54.0.104(rw,sync,no_subtree_check,root_squash,anonuid=65534,anongid=65534,sec=sys)\n",
		"\n/srv/a\\040b 10.0.0.0/8(ro,",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("exports file lacks %q:\n%s", w, got)
		}
	}
}

func TestGaneshaConfig(t *testing.T) {
	x := []Export{{Path: "/home", RW: true, Clients: []netip.Prefix{netip.MustParsePrefix("10.54.0.96/27")}, AnonUID: 65534, AnonGID: 65534, Lines: []string{"fstab:1"}}}
	got := string(GaneshaConfig(x, master, 2049, "/run/beowulf/nfs", map[string]int{"/home": 3}))
	for _, w := range []string{
		"Protocols = 4;", "Bind_Addr = 10.54.0.1;", "NFS_Port = 2049;", "Enable_UDP = false;",
		"Graceless = true;", "Only_Numeric_Owners = true;", `RecoveryRoot = "/run/beowulf/nfs/recovery";`,
		"Export_Id = 3;", `Path = "/home";`, `Pseudo = "/home";`, "Squash = Root_Squash;", "Anonymous_Uid = 65534;",
		"Clients = 10.54.0.96/27;", "Access_Type = RW;", "Name = VFS;",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("ganesha config lacks %q:\n%s", w, got)
		}
	}
}

func TestDetect(t *testing.T) {
	look := func(have ...string) func(string) (string, error) {
		return func(name string) (string, error) {
			for _, h := range have {
				if h == name {
					return "/usr/sbin/" + name, nil
				}
			}
			return "", errors.New("not found")
		}
	}
	noNFSD := t.TempDir()
	os.WriteFile(filepath.Join(noNFSD, "filesystems"), []byte("nodev\tsysfs\nnodev\ttmpfs\n\text4\n"), 0o644)
	listed := t.TempDir()
	os.WriteFile(filepath.Join(listed, "filesystems"), []byte("nodev\tsysfs\nnodev\tnfsd\n"), 0o644)
	mounted := t.TempDir()
	os.MkdirAll(filepath.Join(mounted, "fs/nfsd"), 0o755)
	tests := []struct {
		proc string
		have []string
		want Kind
	}{
		{noNFSD, []string{"exportfs", "ganesha.nfsd"}, Ganesha},
		{noNFSD, []string{"exportfs"}, None},
		{noNFSD, nil, None},
		{listed, []string{"exportfs", "ganesha.nfsd"}, Kernel},
		{mounted, []string{"exportfs"}, Kernel},
		{mounted, []string{"ganesha.nfsd"}, Ganesha},
		{mounted, nil, None},
	}
	for i, tt := range tests {
		got, why := Detect(tt.proc, look(tt.have...))
		if got != tt.want || why == "" {
			t.Errorf("%d: Detect = %s (%s), want %s", i, got, why, tt.want)
		}
	}
	if _, err := ParseKind("nfsd"); err == nil {
		t.Error("ParseKind(nfsd): no error")
	}
}

// TestMountsNoServer: with no server, a node whose fstab needs the
// master's exports gets its lines and a note per line naming the file,
// the line and why; a path the master lacks is named as such.
func TestMountsNoServer(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	os.Mkdir(home, 0o755)
	base := filepath.Join(dir, "fstab")
	os.WriteFile(base, []byte(fmt.Sprintf("$MASTER:%s /home nfs rw,nonfatal\nnone /proc proc\n", home)), 0o644)
	os.WriteFile(base+".2", []byte(fmt.Sprintf("$MASTER:%s/missing /x nfs\nbad line\n", dir)), 0o644)
	os.WriteFile(base+".3", []byte("none /x tmpfs\nbad /y nfs4 nonfatal\nnone /x tmpfs\n"), 0o644)
	s, err := New(Options{Fstab: base, Master: master, Kind: None, Proc: t.TempDir(), LookPath: func(string) (string, error) { return "", errors.New("no") }})
	if err != nil {
		t.Fatal(err)
	}
	s.Reload()
	ms, notes, err := s.Mounts(0, netip.MustParseAddr("10.54.0.100"))
	if err != nil {
		t.Fatal(err)
	}
	want := []wire.Mount{
		{Source: "10.54.0.1:" + home, Target: "/home", Type: "nfs4", Options: "rw,vers=4.2,addr=10.54.0.1,clientaddr=10.54.0.100,sec=sys", File: base, Line: 1},
		{Source: "none", Target: "/proc", Type: "proc", Fatal: true, File: base, Line: 2},
	}
	if !reflect.DeepEqual(ms, want) {
		t.Errorf("mounts\n%+v\nwant\n%+v", ms, want)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], base+":1: no NFS server serves "+home+" on the master (none)") {
		t.Errorf("notes %q, want one naming %s:1 and the missing server", notes, base)
	}
	// Node 2: its own file; a bad line without nonfatal is the error.
	_, _, err = s.Mounts(2, netip.MustParseAddr("10.54.0.102"))
	if err == nil || !strings.Contains(err.Error(), base+".2:2: 2 fields") {
		t.Errorf("node 2: %v, want the bad line's error", err)
	}
	// The missing path is refused (Mounts reloaded: the file is new).
	os.WriteFile(base+".2", []byte(fmt.Sprintf("$MASTER:%s/missing /x nfs nonfatal\n", dir)), 0o644)
	_, notes, err = s.Mounts(2, netip.MustParseAddr("10.54.0.102"))
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], "the master does not export "+dir+"/missing: no such directory on the master") {
		t.Errorf("node 2: %v %q, want a note on the missing directory", err, notes)
	}
	// Node 3: a nonfatal bad line and a warning are notes.
	ms, notes, err = s.Mounts(3, netip.MustParseAddr("10.54.0.103"))
	if err != nil || len(ms) != 2 || len(notes) != 2 || !strings.Contains(notes[0], "fstab.3:3: /x is mounted by line 1 too") || !strings.Contains(notes[1], "fstab.3:2: not mounted (nonfatal): NFS source") {
		t.Errorf("node 3: %v %d mounts, notes %q", err, len(ms), notes)
	}
	// No fstab at all: nothing, no error.
	s2, _ := New(Options{Fstab: filepath.Join(dir, "nothing"), Master: master, Kind: None})
	if ms, notes, err := s2.Mounts(0, netip.Addr{}); ms != nil || notes != nil || err != nil {
		t.Errorf("no fstab: %v %v %v", ms, notes, err)
	}
}
