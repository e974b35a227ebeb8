package fstab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/pkg/config"
	"golang.org/x/sys/unix"
)

var (
	master = netip.MustParseAddr("10.54.0.1")
	node   = netip.MustParseAddr("10.54.0.105")
)

func TestParseDiags(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string // "line: severity: substring"
	}{
		{"example", ExampleText, nil},
		{"scyld default", "$RAMDISK / ext2 defaults 0 0\nnone /proc proc defaults 0 0\n$MASTER:/home /home nfs nolock,nonfatal 0 0\n",
			[]string{"1: warning: mounted as tmpfs, not ext2"}},
		{"comments and blanks", "# c\n\n   \t\n$MASTER:/home /home nfs4 rw # trailing\n", nil},
		{"crlf", "none /proc proc defaults 0 0\r\n", nil},
		{"too few fields", "none /proc\n", []string{"1: error: 2 fields"}},
		{"too many fields", "none /proc proc defaults 0 0 9\n", []string{"1: error: 7 fields"}},
		{"dump not a number", "none /proc proc defaults x\n", []string{`1: error: dump/pass field "x"`}},
		{"relative target", "none proc proc\n", []string{"1: error: not an absolute path"}},
		{"climbing target", "none /a/../b tmpfs\n", []string{"1: error: climbs"}},
		{"bad type", "none /x Tmp\n", []string{`1: error: bad file system type "Tmp"`}},
		{"nfs by name", "master:/home /home nfs\n", []string{`1: error: "master" is not an address`}},
		{"nfs not host:path", "/home /home nfs4\n", []string{"1: error: want HOST:/PATH"}},
		{"nfs relative path", "$MASTER:home /home nfs4\n", []string{"1: error: want HOST:/PATH"}},
		{"nfs v6", "[fd00::1]:/home /home nfs4\n", nil},
		{"unknown var", "$MASTR:/home /home nfs\n", []string{`1: error: "$MASTR" is not an address`}},
		{"unknown var local", "$DISK /x ext4\n", []string{"1: error: unknown variable $DISK"}},
		{"ramdisk part", "$RAMDISK/x /x tmpfs\n", []string{"1: error: stands for a whole SOURCE"}},
		{"ramdisk nfs", "$RAMDISK /x nfs\n", []string{"1: error: cannot be of type nfs"}},
		{"unknown var in option", "none /x tmpfs size=$SIZE\n", []string{"1: error: unknown variable $SIZE"}},
		{"empty option", "none /x tmpfs rw,,ro\n", []string{"1: error: empty option"}},
		{"duplicate target", "none /x tmpfs\nnone /x/ tmpfs\n", []string{"2: warning: /x is mounted by line 1 too"}},
		{"noauto no duplicate", "none /x tmpfs noauto\nnone /x tmpfs\n", nil},
		{"swap", "/dev/sda2 none swap defaults 0 0\n/dev/sda3 swap swap\n", nil},
		{"control char", "none /x tmpfs\x1b\n", []string{"1: error: control character U+001B"}},
		{"escaped control", `none /x\001 tmpfs` + "\n", []string{"1: error: field 2: an escape makes a control character"}},
		{"nul", "none /x tmpfs\nx\x00\n", []string{"2: error: NUL byte"}},
		{"not utf-8", "none /\xff tmpfs\n", []string{"1: error: invalid UTF-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Parse("fstab", []byte(tt.text))
			checkDiags(t, tab, err, tt.want)
		})
	}
}

func TestParseEntries(t *testing.T) {
	tab, err := Parse("f", []byte(`# homes
$MASTER:/home	/home	nfs	rw,nonfatal	0 0
10.54.0.2:/data\040set /data nfs4 ro,hard,nofail
$MASTER:/usr /usr nfs ro
/dev/sda3 /scratch ext4
none /skip tmpfs noauto
bad line
`))
	if err == nil {
		t.Fatal("no error for the bad line")
	}
	want := []Entry{
		{Line: 2, Source: "$MASTER:/home", Target: "/home", Type: "nfs", Options: []string{"rw", "nonfatal"}},
		{Line: 3, Source: "10.54.0.2:/data set", Target: "/data", Type: "nfs4", Options: []string{"ro", "hard", "nofail"}},
		{Line: 4, Source: "$MASTER:/usr", Target: "/usr", Type: "nfs", Options: []string{"ro"}},
		{Line: 5, Source: "/dev/sda3", Target: "/scratch", Type: "ext4", Options: []string{"defaults"}},
		{Line: 6, Source: "none", Target: "/skip", Type: "tmpfs", Options: []string{"noauto"}},
		{Line: 7, Options: []string{"defaults"}, Bad: "2 fields; want SOURCE TARGET TYPE [OPTIONS [DUMP [PASS]]]"},
	}
	if !reflect.DeepEqual(tab.Entries, want) {
		t.Errorf("entries\n%+v\nwant\n%+v", tab.Entries, want)
	}
	fatal := []bool{false, false, true, true, true, true}
	for i, e := range tab.Entries {
		if e.Fatal() != fatal[i] {
			t.Errorf("line %d: Fatal %v, want %v", e.Line, e.Fatal(), fatal[i])
		}
	}
	type exp struct {
		path   string
		rw, ok bool
	}
	exports := []exp{{"/home", true, true}, {}, {"/usr", false, true}, {}, {}, {}}
	for i, e := range tab.Entries {
		p, rw, ok := e.Export(master)
		if got := (exp{p, rw, ok}); got != exports[i] {
			t.Errorf("line %d: Export = %+v, want %+v", e.Line, got, exports[i])
		}
	}
	// The master's own address counts as $MASTER.
	e := Entry{Source: "10.54.0.1:/srv/x/", Type: "nfs4", Options: []string{"defaults"}}
	if p, rw, ok := e.Export(master); p != "/srv/x" || !rw || !ok {
		t.Errorf("Export of the master's address = %q %v %v, want /srv/x true true", p, rw, ok)
	}
}

func TestResolve(t *testing.T) {
	tab, _ := Parse("/etc/beowulf/fstab", []byte(`$RAMDISK / ext2 defaults 0 0
none /proc proc defaults 0 0
$MASTER:/home /home nfs rw,nonfatal 0 0
$MASTER:/usr /usr nfs4 ro,vers=4.1
10.54.0.2:/data /data nfs vers=3,nolock,sec=krb5
10.54.0.1:/srv/home /home nfs ro,addr=$MASTER,x-beo=1
$RAMDISK /scratch ramfs size=1m
none /skip tmpfs noauto
oops
`))
	got, bad := tab.Resolve(Vars{Master: master, Node: node})
	f := "/etc/beowulf/fstab"
	want := []Mount{
		{File: f, Line: 1, Source: "tmpfs", Target: "/", Type: "tmpfs", Options: "", Fatal: true},
		{File: f, Line: 2, Source: "none", Target: "/proc", Type: "proc", Options: "", Fatal: true},
		{File: f, Line: 3, Source: "10.54.0.1:/home", Target: "/home", Type: "nfs4", Options: "rw,vers=4.2,addr=10.54.0.1,clientaddr=10.54.0.105,sec=sys", Export: "/home", Mirror: true},
		{File: f, Line: 4, Source: "10.54.0.1:/usr", Target: "/usr", Type: "nfs4", Options: "ro,vers=4.1,addr=10.54.0.1,clientaddr=10.54.0.105,sec=sys", Fatal: true, Export: "/usr", Mirror: true},
		{File: f, Line: 5, Source: "10.54.0.2:/data", Target: "/data", Type: "nfs", Options: "vers=3,nolock,sec=krb5,addr=10.54.0.2,clientaddr=10.54.0.105", Fatal: true},
		{File: f, Line: 6, Source: "10.54.0.1:/srv/home", Target: "/home", Type: "nfs4", Options: "ro,addr=10.54.0.1,vers=4.2,clientaddr=10.54.0.105,sec=sys", Fatal: true, Export: "/srv/home"},
		{File: f, Line: 7, Source: "ramfs", Target: "/scratch", Type: "ramfs", Options: "size=1m", Fatal: true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d mounts, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("mount %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if len(bad) != 1 || bad[0].Line != 9 || !bad[0].Fatal() {
		t.Errorf("bad = %+v, want line 9, fatal", bad)
	}
	if w := got[2].Where(); w != "/etc/beowulf/fstab:3" {
		t.Errorf("Where = %q", w)
	}
	var nilTable *Table
	if ms, bad := nilTable.Resolve(Vars{}); ms != nil || bad != nil {
		t.Errorf("nil table resolves to %v %v", ms, bad)
	}
}

func TestKernelArgs(t *testing.T) {
	tests := []struct {
		opts  string
		flags uintptr
		data  string
	}{
		{"", 0, ""},
		{"ro,nosuid,nodev", unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV, ""},
		{"ro,rw", 0, ""},
		{"rw,vers=4.2,addr=10.0.0.1", 0, "vers=4.2,addr=10.0.0.1"},
		{"size=50%,mode=1777,noexec", unix.MS_NOEXEC, "size=50%,mode=1777"},
		{"rbind,defaults,nonfatal", unix.MS_BIND | unix.MS_REC, ""},
	}
	for _, tt := range tests {
		f, d := KernelArgs(tt.opts)
		if f != tt.flags || d != tt.data {
			t.Errorf("KernelArgs(%q) = %#x %q, want %#x %q", tt.opts, f, d, tt.flags, tt.data)
		}
	}
}

func TestModules(t *testing.T) {
	tests := map[string][]string{"nfs4": {"nfsv4"}, "nfs": {"nfsv3", "nfsv2"}, "proc": nil, "tmpfs": nil, "swap": nil,
		"ext4": {"crc32c_generic", "ext4"}, "ext3": {"crc32c_generic", "ext3", "ext4"}, "xfs": {"xfs"}}
	for typ, want := range tests {
		if got := Modules(typ); !reflect.DeepEqual(got, want) {
			t.Errorf("Modules(%s) = %v, want %v", typ, got, want)
		}
	}
	if got, want := MountModules(), []string{"nfsv4", "nfsv3", "nfsv2", "crc32c_generic", "ext4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("MountModules() = %v, want %v", got, want)
	}
}

func TestTableModules(t *testing.T) {
	for _, tt := range []struct {
		text string
		want []string
	}{
		{"", nil},
		{"none /proc proc defaults\n$RAMDISK /tmp tmpfs\n", nil},
		// nfs without a version is nfs4; noauto and bad lines need nothing.
		{"$MASTER:/home /home nfs rw\n$MASTER:/usr /usr nfs4 ro\n10.0.0.9:/x /x nfs noauto\nhost:/y /y nfs\n", []string{"nfsv4"}},
		{"/dev/vda1 swap swap\n/dev/vda2 /scratch ext4\n$MASTER:/old /old nfs vers=3\n", []string{"crc32c_generic", "ext4", "nfsv3", "nfsv2"}},
	} {
		tab, _ := Parse("fstab", []byte(tt.text))
		if got := tab.Modules(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: Modules() = %v, want %v", tt.text, got, tt.want)
		}
	}
	var none *Table
	if got := none.Modules(); got != nil {
		t.Errorf("nil Table: %v", got)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "fstab")
	if tab, err := Load(base, 3); tab != nil || err != nil {
		t.Fatalf("no files: %v %v, want nil nil", tab, err)
	}
	os.WriteFile(base, []byte("none /all tmpfs\n"), 0o644)
	os.WriteFile(base+".3", []byte("none /three tmpfs\n"), 0o644)
	for n, want := range map[int]string{0: "/all", 3: "/three", 30: "/all"} {
		tab, err := Load(base, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(tab.Entries) != 1 || tab.Entries[0].Target != want {
			t.Errorf("node %d: %+v, want the line of %s", n, tab, want)
		}
		if wantFile := map[bool]string{true: base + ".3", false: base}[n == 3]; tab.File != wantFile {
			t.Errorf("node %d: file %s, want %s", n, tab.File, wantFile)
		}
	}
	os.Mkdir(base+".4", 0o755) // unreadable as a file
	if _, err := Load(base, 4); err == nil {
		t.Error("Load of a directory: no error")
	}
}

// FuzzParse: any bytes parse without panicking; diagnostics name lines of
// the file; the error agrees with the diagnostics; a good, auto line
// resolves to an absolute target and options the kernel can take.
func FuzzParse(f *testing.F) {
	for _, s := range []string{ExampleText, "", "\n", "$MASTER:/home /home nfs rw,nonfatal 0 0", "[::1]:/x /x nfs4", `a\040b /c\011 tmpfs`, "none /x tmpfs a,,b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := Parse("fuzz", data)
		n := strings.Count(string(data), "\n") + 1
		nerr := 0
		for _, d := range tab.Diags() {
			if d.Line < 1 || d.Line > n {
				t.Errorf("diagnostic on line %d of %d: %v", d.Line, n, d)
			}
			if d.Severity == config.Error {
				nerr++
			}
		}
		if (nerr > 0) != (err != nil) {
			t.Errorf("%d errors, err %v", nerr, err)
		}
		ms, bad := tab.Resolve(Vars{Master: master, Node: node})
		for _, b := range bad {
			if b.Bad == "" {
				t.Errorf("bad entry without an error: %+v", b)
			}
		}
		for _, m := range ms {
			if m.Type != "swap" && !filepath.IsAbs(m.Target) {
				t.Errorf("target %q not absolute", m.Target)
			}
			if strings.Contains(m.Source+m.Options, "$") && !strings.Contains(string(data), "$$") {
				// only $MASTER exists, and it is replaced
				if strings.Contains(m.Source+m.Options, VarMaster) {
					t.Errorf("unreplaced %s in %+v", VarMaster, m)
				}
			}
			if strings.ContainsRune(m.Source+m.Target+m.Options, 0) {
				t.Errorf("NUL in %+v", m)
			}
		}
	})
}

// checkDiags checks tab's diagnostics against want, each "LINE:
// SEVERITY: part of the message", and that err says whether any is an
// error.
func checkDiags(t *testing.T, tab *Table, err error, want []string) {
	t.Helper()
	var got []string
	nerr := 0
	for _, d := range tab.Diags() {
		got = append(got, fmt.Sprintf("%d: %s: %s", d.Line, d.Severity, d.Msg))
		if d.Severity == config.Error {
			nerr++
		}
	}
	if (nerr > 0) != (err != nil) {
		t.Errorf("%d errors but err = %v", nerr, err)
	}
	if len(got) != len(want) {
		t.Fatalf("diags %q, want %q", got, want)
	}
	for i, g := range got {
		w := strings.SplitN(want[i], ": ", 3)
		if !strings.HasPrefix(g, w[0]+": "+w[1]+": ") || !strings.Contains(g, w[2]) {
			t.Errorf("diag %q, want %q", g, want[i])
		}
	}
}
