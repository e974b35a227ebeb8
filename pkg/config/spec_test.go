package config

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse("test.conf", []byte(text), Options{})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return c
}

func TestPrecedence(t *testing.T) {
	c := mustParse(t, `nodes 10
iprange 10.54.0.100 10.54.0.109
kernelimage 4-6 /node/early
kernelimage /default
class c kernelimage /class
class c initrdimage none
kernelimage 5 /node/late
kernelcommandline 6 none
kernelcommandline 5,6 quiet   console=ttyS0
node 0 00:00:00:00:00:10
node 1 c 00:00:00:00:00:01
node 4 c 00:00:00:00:00:04
node 5 c 00:00:00:00:00:05
node 6 00:00:00:00:00:06
`)
	tests := []struct {
		node                    int
		kernel, initrd, cmdline Setting
	}{
		{0, val("/default", LevelDefault, 4), Setting{}, Setting{}},
		{1, val("/class", LevelClass, 5), none(LevelClass, 6), Setting{}},
		{4, val("/node/early", LevelNode, 3), none(LevelClass, 6), Setting{}},
		{5, val("/node/late", LevelNode, 7), none(LevelClass, 6), val("quiet console=ttyS0", LevelNode, 9)},
		{6, val("/node/early", LevelNode, 3), Setting{}, val("quiet console=ttyS0", LevelNode, 9)},
	}
	for _, tt := range tests {
		s, ok := c.Node(tt.node)
		if !ok {
			t.Fatalf("node %d missing", tt.node)
		}
		if s.Kernel != tt.kernel || s.Initrd != tt.initrd || s.CmdLine != tt.cmdline {
			t.Errorf("node %d: got kernel %+v initrd %+v cmdline %+v,\nwant kernel %+v initrd %+v cmdline %+v",
				tt.node, s.Kernel, s.Initrd, s.CmdLine, tt.kernel, tt.initrd, tt.cmdline)
		}
	}
	if got := (Setting{}).String() + " " + none(LevelNode, 1).String(); got != "- none" {
		t.Errorf("Setting.String: got %q, want %q", got, "- none")
	}
}

func TestNodeNumbering(t *testing.T) {
	c := mustParse(t, `iprange 10.54.0.100 10.54.0.199
node 00:00:00:00:00:10
node 5
node 00:00:00:00:00:06
node 3 pxe pxe 00:00:00:00:00:03
node 00:00:00:00:00:04 00:00:00:00:01:04
`)
	var got []int
	for _, s := range c.Nodes() {
		got = append(got, s.Num)
	}
	if want := []int{0, 3, 4, 5, 6}; !reflect.DeepEqual(got, want) {
		t.Errorf("node numbers: got %v, want %v", got, want)
	}
	if s, _ := c.Node(5); len(s.MACs) != 0 {
		t.Errorf("reserved node 5: got MACs %v, want none", s.MACs)
	}
	if s, _ := c.Node(4); len(s.MACs) != 2 {
		t.Errorf("node 4: got MACs %v, want 2", s.MACs)
	}
}

func TestNames(t *testing.T) {
	c := mustParse(t, `iprange 10.54.0.100 10.54.0.199
nodename n%N
nodename n%N-ipmi 0.0.1.0 ipmi
nodename bmc%N 512
nodename %N.compute cluster
node 4 00:00:00:00:00:04
`)
	s, _ := c.Node(4)
	want := []Name{
		{"n4", addr("10.54.0.104"), ""},
		{"n4-ipmi", addr("10.54.1.104"), "ipmi"},
		{"bmc4", addr("10.54.2.104"), ""},
		{"4.compute", addr("10.54.0.104"), "cluster"},
	}
	if !reflect.DeepEqual(s.Names, want) {
		t.Errorf("names:\ngot  %v\nwant %v", s.Names, want)
	}
	wantPat := NamePattern{Pattern: "n%N-ipmi", Offset: 256, Group: "ipmi", Line: 3}
	if got := c.NodeNames(); len(got) != 4 || got[1] != wantPat {
		t.Errorf("NodeNames: got %+v, want [1] = %+v", got, wantPat)
	}
}

func TestAccessors(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "cluster.conf"), chapterMaster)
	checkDiags(t, c, err, []want{{10, Warning, "server tcp is deprecated"}})
	if got, want := c.Ports(), (Ports{BProc: 933, BeoStats: 5545, Kickback: 3045, Syslog: 514, BeoFS2: 932, HTTP: 80}); got != want {
		t.Errorf("Ports: got %+v, want %+v", got, want)
	}
	if got, want := c.PingTimeout(), 30*time.Second; got != want {
		t.Errorf("PingTimeout: got %v, want %v", got, want)
	}
	if got, want := c.PingInterval(), 15*time.Second; got != want {
		t.Errorf("PingInterval: got %v, want %v", got, want)
	}
	checkStrings(t, "Libraries", c.Libraries(), "/lib64", "/usr/lib64", "/opt/intel/lib")
	checkStrings(t, "BootModules", c.BootModules(), "e1000", "virtio_net", "igb")
	checkStrings(t, "Interfaces", c.Interfaces(), "eth1")
	if got := c.NodeAssign(); got != AssignInsert {
		t.Errorf("NodeAssign: got %s, want insert", got)
	}
	if got := c.Ignored(); !reflect.DeepEqual(got, macs("52:54:00:aa:bb:cc", "52:54:00:aa:bb:cd")) {
		t.Errorf("Ignored: got %v", got)
	}
	if m := c.Lookup(macs("52:54:00:aa:bb:cd")[0]); m.Kind != KindIgnored || m.Line != 34 {
		t.Errorf("Lookup(ignored): got %+v, want ignore on line 34", m)
	}
	if m := c.Lookup(macs("52:54:00:00:01:05")[0]); m.Kind != KindNode || m.Node != 5 || m.Line != 32 {
		t.Errorf("Lookup(node 5's second MAC): got %+v, want node 5 on line 32", m)
	}
	if m := c.Lookup(macs("52:54:00:12:34:56")[0]); m.Kind != KindUnknown {
		t.Errorf("Lookup(unlisted): got %+v, want unknown", m)
	}
	if got, want := c.HostRanges(), []Range{{addr("10.54.10.1"), addr("10.54.10.50"), 5}}; !reflect.DeepEqual(got, want) {
		t.Errorf("HostRanges: got %v, want %v", got, want)
	}

	d := mustParse(t, "server http 8080\nserver syslog 1514\nserver kickback 3046\nserver beofs2 9932\niprange 10.54.0.100 10.54.0.103\n")
	if got, want := d.Ports(), (Ports{BProc: 933, BeoStats: 5545, Kickback: 3046, Syslog: 1514, BeoFS2: 9932, HTTP: 8080}); got != want {
		t.Errorf("Ports: got %+v, want %+v", got, want)
	}
	if got := d.PingTimeout(); got != DefaultPingTimeout {
		t.Errorf("default PingTimeout: got %v, want %v", got, DefaultPingTimeout)
	}
	if got := mustParse(t, "nodeassign locked\niprange 10.54.0.100 10.54.0.103\n").NodeAssign(); got != AssignOff {
		t.Errorf("nodeassign locked: got %s, want off", got)
	}
	for text, want := range map[string]bool{"": false, "ipforward\n": true, "ipforward yes\n": true, "ipforward on\n": true,
		"ipforward 1\n": true, "ipforward no\n": false, "ipforward off\n": false, "ipforward\nipforward no\n": false} {
		if got := mustParse(t, text+"iprange 10.54.0.100 10.54.0.103\n").IPForward(); got != want {
			t.Errorf("%q: IPForward() = %v, want %v", text, got, want)
		}
	}
}

func TestMasterOrder(t *testing.T) {
	c := mustParse(t, "nodes 40\niprange 10.54.0.100 10.54.0.139\nmasterorder 0-19 10.54.1.1 10.54.1.2\nmasterorder 20-39 10.54.1.2 10.54.1.1\n")
	a, b, other := netip.MustParseAddr("10.54.1.1"), netip.MustParseAddr("10.54.1.2"), netip.MustParseAddr("10.54.1.3")
	for _, tc := range []struct {
		node                    int
		order                   []netip.Addr
		rankA, rankB, rankOther int
	}{
		{0, []netip.Addr{a, b}, 0, 1, -1},
		{19, []netip.Addr{a, b}, 0, 1, -1},
		{20, []netip.Addr{b, a}, 1, 0, -1},
		{39, []netip.Addr{b, a}, 1, 0, -1},
	} {
		if got := c.MasterOrder(tc.node); !reflect.DeepEqual(got, tc.order) {
			t.Errorf("node %d: MasterOrder = %v, want %v", tc.node, got, tc.order)
		}
		if ra, rb, ro := c.MasterRank(tc.node, a), c.MasterRank(tc.node, b), c.MasterRank(tc.node, other); ra != tc.rankA || rb != tc.rankB || ro != tc.rankOther {
			t.Errorf("node %d: ranks %d %d %d, want %d %d %d", tc.node, ra, rb, ro, tc.rankA, tc.rankB, tc.rankOther)
		}
	}
	if got := c.Masters(); !reflect.DeepEqual(got, []netip.Addr{a, b}) || !c.MultiMaster() {
		t.Errorf("Masters = %v, MultiMaster %v; want [a b], true", got, c.MultiMaster())
	}
	// Without masterorder every master is each node's only one.
	single := mustParse(t, "iprange 10.54.0.100 10.54.0.103\n")
	if single.MasterOrder(0) != nil || single.MasterRank(0, other) != 0 || single.MultiMaster() {
		t.Error("no masterorder: want no order, rank 0, not multi-master")
	}
	// "-" is every node; the first line covering a node wins.
	all := mustParse(t, "iprange 10.54.0.100 10.54.0.103\nmasterorder - 10.54.1.2 10.54.1.1\nmasterorder 1 10.54.1.1\n")
	if got := all.MasterOrder(1); !reflect.DeepEqual(got, []netip.Addr{b, a}) {
		t.Errorf("masterorder -: node 1 got %v, want [b a]", got)
	}
}

func checkStrings(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

func TestNodeAddresses(t *testing.T) {
	tests := []struct {
		text  string
		count int
		addrs map[int]string // node → address, "" = none
	}{
		{"", 0, map[int]string{0: ""}},
		{"nodes 8\n", 8, map[int]string{0: "", 7: ""}},
		{"iprange 10.54.0.100 10.54.0.103\n", 4, map[int]string{0: "10.54.0.100", 3: "10.54.0.103", 4: "", -1: ""}},
		{"nodes 2\niprange 10.54.0.100 10.54.0.103\n", 2, map[int]string{1: "10.54.0.101", 2: ""}},
		{"nodes 8\niprange 10.54.0.254 10.54.1.2\n", 5, map[int]string{2: "10.54.1.0", 4: "10.54.1.2", 5: ""}},
		{"iprange 255.255.255.254 255.255.255.255\n", 2, map[int]string{1: "255.255.255.255", 2: ""}},
	}
	for _, tt := range tests {
		c, _ := Parse("test.conf", []byte(tt.text), Options{})
		if got := c.NodeCount(); got != tt.count {
			t.Errorf("%q: NodeCount got %d, want %d", tt.text, got, tt.count)
		}
		for n, want := range tt.addrs {
			a, ok := c.NodeAddr(n)
			if (want == "") == ok || (ok && a.String() != want) {
				t.Errorf("%q: NodeAddr(%d) got %v %v, want %q", tt.text, n, a, ok, want)
			}
			if !ok {
				continue
			}
			if back, ok := c.NodeByAddr(a); !ok || back != n {
				t.Errorf("%q: NodeByAddr(%s) got %d %v, want %d", tt.text, a, back, ok, n)
			}
		}
	}
	c := mustParse(t, "nodes 2\niprange 10.54.0.100 10.54.0.103\n")
	for _, a := range []string{"10.54.0.99", "10.54.0.102", "10.54.0.104", "fd00::1"} {
		if n, ok := c.NodeByAddr(addr(a)); ok {
			t.Errorf("NodeByAddr(%s): got node %d, want none", a, n)
		}
	}
	if n, ok := c.NodeByAddr(addr("::ffff:10.54.0.101")); !ok || n != 1 {
		t.Errorf("NodeByAddr(4in6): got %d %v, want 1", n, ok)
	}
}

func TestNextNode(t *testing.T) {
	const nodes = "iprange 10.54.0.100 10.54.0.103\nnode 0 00:00:00:00:00:10\nnode 2\n"
	tests := []struct {
		text string
		n    int
		ok   bool
	}{
		{"iprange 10.54.0.100 10.54.0.103\n", 0, true},
		{nodes, 3, true},
		{nodes + "nodeassign append\n", 3, true},
		{nodes + "nodeassign insert\n", 1, true},
		{nodes + "nodeassign off\n", 0, false},
		{nodes + "node 3 00:00:00:00:00:03\n", 4, false},
		{nodes + "node 3 00:00:00:00:00:03\nnodeassign insert\n", 1, true},
		{nodes + "node 3 00:00:00:00:00:03\nnode 1\nnodeassign insert\n", 4, false},
	}
	for _, tt := range tests {
		n, ok := mustParse(t, tt.text).NextNode()
		if n != tt.n || ok != tt.ok {
			t.Errorf("%q: NextNode got %d %v, want %d %v", tt.text, n, ok, tt.n, tt.ok)
		}
	}
	// A cluster of 0 nodes is an error, but its Config still answers.
	c, _ := Parse("test.conf", []byte("nodes 0\niprange 10.54.0.100 10.54.0.103\n"), Options{})
	if n, ok := c.NextNode(); n != 0 || ok {
		t.Errorf("nodes 0: NextNode got %d %v, want 0 false", n, ok)
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if len(c.Diags()) != 0 {
		t.Fatalf("Default has diagnostics:\n%s", diagList(c.Diags()))
	}
	master := Options{Masters: []netip.Addr{addr("10.99.0.1")}}
	if _, err := Parse(DefaultFile, []byte(DefaultText), master); err != nil {
		t.Errorf("Default with master 10.99.0.1: %v", err)
	}
	if got := c.NodeCount(); got != 64 {
		t.Errorf("NodeCount: got %d, want 64", got)
	}
	if a, _ := c.NodeAddr(63); a != addr("10.99.0.163") {
		t.Errorf("NodeAddr(63): got %v, want 10.99.0.163", a)
	}
	checkStrings(t, "Interfaces", c.Interfaces(), "beo0")
	if c.File() != DefaultFile || c.PingTimeout() != DefaultPingTimeout || c.NodeAssign() != AssignAppend || c.Ports() != DefaultPorts() {
		t.Errorf("Default: unexpected settings %q %v %v %+v", c.File(), c.PingTimeout(), c.NodeAssign(), c.Ports())
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "config"), Options{}); err == nil {
		t.Error("Load of a missing file: got nil error")
	}
}

func TestDiskPolicies(t *testing.T) {
	for _, tc := range []struct {
		text string
		mkfs Mkfs
		fsck Fsck
	}{
		{"", MkfsNever, FsckSafe},
		{"mkfs if_error\nfsck full\n", MkfsIfError, FsckFull},
		{"mkfs if_needed\n", MkfsIfError, FsckSafe},
		{"mkfs always\nfsck never\n", MkfsAlways, FsckNever},
	} {
		c, err := Parse("t", []byte(withRange(tc.text)), Options{})
		if err != nil {
			t.Fatalf("%q: %v", tc.text, err)
		}
		if c.MkfsPolicy() != tc.mkfs || c.FsckPolicy() != tc.fsck {
			t.Errorf("%q: mkfs %s fsck %s, want %s %s", tc.text, c.MkfsPolicy(), c.FsckPolicy(), tc.mkfs, tc.fsck)
		}
	}
}
