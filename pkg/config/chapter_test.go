package config

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"
)

// The fixtures in testdata reproduce the configurations of the "Managing
// Non-Scyld Nodes" chapter (its addresses were lost; these are plausible
// ones on 10.54.0.0/16 with the master at 10.54.0.1).

var chapterMaster = Options{Masters: []netip.Addr{netip.MustParseAddr("10.54.0.1")}}

const (
	vmlinuz  = "/boot/vmlinuz-2.6.18-164.2.1.el5.540g0000"
	initrd   = "/var/beowulf/boot/computenode.initrd"
	cmdline  = "rw root=/dev/ram0 image=/var/beowulf/boot/computenode.rootfs"
	memtest  = "/var/beowulf/boot/memtest86+-4.00.bin"
	centosK  = "/var/beowulf/boot/vmlinuz-centos5u4_amd64"
	centosI  = "/var/beowulf/boot/initrd-centos5u4_amd64.img"
	centosCL = "initrd=initrd-centos5u4_amd64.img ks=nfs:10.54.0.1:/home/os/kickstarts/n5-ks.cfg ksdevice=eth0"
)

func loadFixture(t *testing.T, name string) *Config {
	t.Helper()
	c, err := Load(filepath.Join("testdata", name), chapterMaster)
	if err != nil || len(c.Diags()) != 0 {
		t.Fatalf("%s: got error %v, diagnostics\n%s", name, err, diagList(c.Diags()))
	}
	return c
}

func macs(ss ...string) []MAC {
	var ms []MAC
	for _, s := range ss {
		m, err := ParseMAC(s)
		if err != nil {
			panic(err)
		}
		ms = append(ms, m)
	}
	return ms
}

func val(v string, l Level, line int) Setting { return Setting{Value: v, Level: l, Line: line} }
func none(l Level, line int) Setting          { return Setting{None: true, Level: l, Line: line} }
func addr(s string) netip.Addr                { return netip.MustParseAddr(s) }
func host(m, a string, auto bool, line int, names ...string) Host {
	return Host{MAC: macs(m)[0], Addr: addr(a), Auto: auto, Names: names, Line: line}
}

func TestChapterHosts(t *testing.T) {
	tests := []struct {
		file string
		want []Host
	}{
		{"hosts.conf", []Host{
			host("00:A0:D1:E9:87:CA", "10.54.10.1", false, 6, "smartswitch"),
			host("00:A0:D1:E3:FC:E2", "10.54.11.1", false, 7, "pdu1"),
			host("00:A0:D1:E3:FD:4A", "10.54.11.2", false, 8, "pdu2"),
		}},
		{"hosts-noaddr.conf", []Host{
			host("00:A0:D1:E9:87:CA", "10.54.10.1", true, 7, "smartswitch"),
			host("00:A0:D1:E3:FC:E2", "10.54.10.2", true, 8, "pdu1"),
			host("00:A0:D1:E3:FD:4A", "10.54.10.3", true, 9, "pdu2"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c := loadFixture(t, tt.file)
			if got := c.Hosts(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Hosts:\ngot  %+v\nwant %+v", got, tt.want)
			}
			m := c.Lookup(macs("00:a0:d1:e9:87:ca")[0])
			if m.Kind != KindHost || m.Host.Names[0] != "smartswitch" {
				t.Errorf("Lookup(smartswitch MAC): got %+v, want the smartswitch host", m)
			}
		})
	}
}

func TestChapterNodes(t *testing.T) {
	node15 := macs("00:A0:D1:E5:C4:6E", "00:A0:D1:E5:C4:6F")
	tests := []struct {
		file string
		want []NodeSpec
	}{
		{"pxe-default.conf", []NodeSpec{{
			Num: 0, Line: 8, MACs: node15, Addr: addr("10.54.0.100"), Sequence: SeqPXE, Stage: StagePXE,
			Kernel: val(vmlinuz, LevelDefault, 5), Initrd: val(initrd, LevelDefault, 6), CmdLine: val(cmdline, LevelDefault, 7),
		}}},
		{"memtest-range.conf", []NodeSpec{{
			Num: 14, Line: 10, MACs: macs("00:A0:D1:E5:C4:60"), Addr: addr("10.54.0.114"), Sequence: SeqPXE, Stage: StagePXE,
			Kernel: val(vmlinuz, LevelDefault, 4), Initrd: val(initrd, LevelDefault, 5), CmdLine: val(cmdline, LevelDefault, 6),
		}, {
			Num: 15, Line: 11, MACs: node15, Addr: addr("10.54.0.115"), Sequence: SeqPXE, Stage: StagePXE,
			Kernel: val(memtest, LevelNode, 7), Initrd: none(LevelNode, 8), CmdLine: none(LevelNode, 9),
		}}},
		{"memtest-class.conf", []NodeSpec{{
			Num: 15, Line: 10, MACs: node15, Addr: addr("10.54.0.115"), Class: "memtest", Sequence: SeqPXE, Stage: StagePXE,
			Kernel: val(memtest, LevelClass, 7), Initrd: none(LevelClass, 8), CmdLine: none(LevelClass, 9),
		}}},
		{"scyld-class.conf", []NodeSpec{{
			Num: 0, Line: 7, MACs: node15, Addr: addr("10.54.0.100"), Class: "scyld", Sequence: SeqPXE, Stage: StagePXE,
			Kernel: val(vmlinuz, LevelClass, 4), Initrd: val(initrd, LevelClass, 5), CmdLine: val(cmdline, LevelClass, 6),
		}}},
		{"genericboot.conf", []NodeSpec{{
			Num: 15, Line: 7, MACs: node15, Addr: addr("10.54.0.115"), Class: "genericboot", Sequence: SeqPXELocal, Stage: StageLocal,
			Kernel: none(LevelClass, 4), Initrd: none(LevelClass, 5), CmdLine: none(LevelClass, 6),
		}}},
		{"kickstart.conf", []NodeSpec{{
			Num: 15, Line: 8, MACs: node15, Addr: addr("10.54.0.115"), Class: "centos5u4", Sequence: SeqPXELocal, Stage: StagePXE,
			Kernel: val(centosK, LevelClass, 5), Initrd: val(centosI, LevelClass, 6), CmdLine: val(centosCL, LevelClass, 7),
		}}},
		{"reprovision.conf", []NodeSpec{{
			Num: 15, Line: 7, MACs: node15, Addr: addr("10.54.0.115"), Class: "centos5u4", Sequence: SeqPXE, Stage: StagePXE,
			Kernel: val(centosK, LevelClass, 4), Initrd: val(centosI, LevelClass, 5), CmdLine: val(centosCL, LevelClass, 6),
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c := loadFixture(t, tt.file)
			got := c.Nodes()
			if len(got) != len(tt.want) {
				t.Fatalf("got %d nodes, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], tt.want[i]) {
					t.Errorf("node %d:\ngot  %+v\nwant %+v", tt.want[i].Num, got[i], tt.want[i])
				}
				for _, m := range got[i].MACs {
					if mt := c.Lookup(m); mt.Kind != KindNode || mt.Node != got[i].Num {
						t.Errorf("Lookup(%s): got %+v, want node %d", m, mt, got[i].Num)
					}
				}
			}
		})
	}
}

func TestChapterMemtestRange(t *testing.T) {
	c := loadFixture(t, "memtest-nodes.conf")
	for n, wantMemtest := range map[int]bool{9: false, 10: true, 15: true, 20: true, 21: false} {
		s, ok := c.Node(n)
		if !ok {
			t.Fatalf("node %d missing", n)
		}
		if got := s.Kernel.Value == memtest && s.Initrd.None && s.CmdLine.None; got != wantMemtest {
			t.Errorf("node %d: got kernel %s initrd %s cmdline %s, want memtest %v", n, s.Kernel, s.Initrd, s.CmdLine, wantMemtest)
		}
	}
}

// TestChapterKickstart follows node 15 through its kickstart: the boot
// server answers the pxe stage, then rewrites the line to local.
func TestChapterKickstart(t *testing.T) {
	f, err := Open(filepath.Join("testdata", "kickstart.conf"), chapterMaster)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := f.Config().Node(15)
	stage, rewrite := s.AfterPXE()
	if stage != StageLocal || !rewrite {
		t.Fatalf("AfterPXE: got %s %v, want local true", stage, rewrite)
	}
	if err := f.SetBootStage(15, stage); err != nil {
		t.Fatal(err)
	}
	lines := splitLines(f.Bytes())
	if got, want := string(lines[7]), "node 15 centos5u4 pxe+local local 00:A0:D1:E5:C4:6E 00:A0:D1:E5:C4:6F"; got != want {
		t.Errorf("line 8: got %q, want %q", got, want)
	}
	s, _ = f.Config().Node(15)
	if _, again := s.AfterPXE(); s.Stage != StageLocal || again {
		t.Errorf("after rewrite: got stage %s (rewrite again %v), want local, false", s.Stage, again)
	}
	for _, file := range []string{"reprovision.conf", "genericboot.conf"} {
		s, _ := loadFixture(t, file).Node(15)
		if st, rw := s.AfterPXE(); rw || st != s.Stage {
			t.Errorf("%s: AfterPXE got %s %v, want %s false", file, st, rw, s.Stage)
		}
	}
}
