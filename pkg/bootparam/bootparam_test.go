package bootparam

import (
	"net/netip"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	p := Defaults()
	p.Master = netip.MustParseAddr("10.99.0.1")
	p.BProc, p.HTTP = 1933, 8080
	p.SyslogServer, p.LegacySyslog, p.RootfsSize = "10.99.0.7:5514", true, "1g"
	p.Modules = "nfsv4,crc32c_generic,ext4"
	got, err := Parse("console=ttyS0 panic=-1 " + p.String() + " quiet")
	if err != nil {
		t.Fatal(err)
	}
	if got != p {
		t.Errorf("got %+v, want %+v", got, p)
	}
}

func TestParseDefaultsAndErrors(t *testing.T) {
	got, err := Parse("console=ttyS0 beo.master=10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Master = netip.MustParseAddr("10.0.0.1")
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if l := got.ModuleList(); l != nil {
		t.Errorf("no beo.modules=: ModuleList() = %v", l)
	}
	if l := (Params{Modules: "nfsv4,ext4"}).ModuleList(); len(l) != 2 || l[0] != "nfsv4" || l[1] != "ext4" {
		t.Errorf("ModuleList() = %v", l)
	}
	for _, bad := range []string{"beo.modules=", "beo.modules=nfsv4,,ext4", "beo.modules=../x", "beo.bproc=0", "beo.http=70000", "beo.master=10.0.0", "beo.rootfs=rel/path", "beo.stats=x"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}

func TestMasters(t *testing.T) {
	p, err := Parse("beo.master=10.99.0.2 beo.masters=10.99.0.1,10.99.0.2,10.99.0.3")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range p.MasterList() {
		got = append(got, a.String())
	}
	if strings.Join(got, " ") != "10.99.0.2 10.99.0.1 10.99.0.3" {
		t.Errorf("MasterList = %v, want the booting master first, then the others in order", got)
	}
	if s := p.String(); !strings.Contains(s, "beo.masters=10.99.0.1,10.99.0.2,10.99.0.3") {
		t.Errorf("String() = %q lacks beo.masters=", s)
	}
	if one, _ := Parse("beo.master=10.99.0.1"); len(one.MasterList()) != 1 || strings.Contains(one.String(), "beo.masters") {
		t.Errorf("one master: MasterList %v, String %q", one.MasterList(), one.String())
	}
	if _, err := Parse("beo.master=10.99.0.1 beo.masters=10.99.0.1,master"); err == nil || !strings.Contains(err.Error(), "beo.masters=") {
		t.Errorf("a name in beo.masters: %v, want an error naming it", err)
	}
}
