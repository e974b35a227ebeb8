package localfs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/fstab"
)

var (
	scratch = Line{Device: "/dev/vda2", Dir: "/scratch", Type: "ext4", Options: "defaults"}
	swap    = Line{Device: "/dev/vda1", Dir: "swap", Type: "swap", Options: "defaults"}
	mkfs    = []string{"mke2fs", "-q", "-F", "-t", "ext4", "/dev/vda2"}
	mkswap  = []string{"mkswap", "/dev/vda1"}
)

func TestDecide(t *testing.T) {
	pol := func(m config.Mkfs, f config.Fsck) Policy { return Policy{m, f} }
	for _, tc := range []struct {
		name  string
		l     Line
		found Found
		p     Policy
		want  Plan
		err   string
	}{
		{"in use", scratch, Found{SigExt, true}, pol(config.MkfsAlways, config.FsckFull), Plan{Skip: true}, ""},
		{"always", scratch, Found{SigExt, false}, pol(config.MkfsAlways, config.FsckFull), Plan{Mkfs: mkfs}, ""},
		{"if_error, none", scratch, Found{SigNone, false}, pol(config.MkfsIfError, config.FsckSafe), Plan{Mkfs: mkfs}, ""},
		{"if_error, swap where ext wanted", scratch, Found{SigSwap, false}, pol(config.MkfsIfError, config.FsckSafe), Plan{Mkfs: mkfs}, ""},
		{"if_error, ext: safe check, remake on errors", scratch, Found{SigExt, false}, pol(config.MkfsIfError, config.FsckSafe),
			Plan{Fsck: []string{"e2fsck", "-p", "/dev/vda2"}, Mkfs: mkfs, Remake: true}, ""},
		{"never, ext: full check, no remake", scratch, Found{SigExt, false}, pol(config.MkfsNever, config.FsckFull),
			Plan{Fsck: []string{"e2fsck", "-f", "-y", "/dev/vda2"}, Mkfs: mkfs}, ""},
		{"fsck never", scratch, Found{SigExt, false}, pol(config.MkfsIfError, config.FsckNever), Plan{}, ""},
		{"never, none", scratch, Found{SigNone, false}, pol(config.MkfsNever, config.FsckSafe), Plan{}, "mkfs never"},
		{"swap present", swap, Found{SigSwap, false}, pol(config.MkfsIfError, config.FsckFull), Plan{}, ""},
		{"swap missing, if_error", swap, Found{SigExt, false}, pol(config.MkfsIfError, config.FsckFull), Plan{Mkfs: mkswap}, ""},
		{"swap missing, never", swap, Found{SigNone, false}, pol(config.MkfsNever, config.FsckFull), Plan{}, "no swap signature"},
		{"swap in use", swap, Found{SigSwap, true}, pol(config.MkfsAlways, config.FsckFull), Plan{Skip: true}, ""},
	} {
		got, err := Decide(tc.l, tc.found, tc.p)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: Decide = %+v, %v; want an error containing %q", tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Decide = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

// fakeNode answers the probe with found, fsck with fsckStatus, and
// records every command.
type fakeNode struct {
	found      string
	fsckStatus int
	ran        []string
}

func (n *fakeNode) Run(ctx context.Context, args ...string) (int, []byte, error) {
	n.ran = append(n.ran, strings.Join(args, " "))
	switch {
	case len(args) > 2 && args[2] == "-probe":
		return 0, []byte(n.found + "\n"), nil
	case args[0] == "e2fsck":
		return n.fsckStatus, []byte("fsck says\n"), nil
	}
	return 0, nil, nil
}

func TestSetup(t *testing.T) {
	ifError := Policy{config.MkfsIfError, config.FsckSafe}
	for _, tc := range []struct {
		name  string
		found string
		fsck  int
		p     Policy
		want  []string
		err   string
	}{
		{"first boot: made, mounted", "none", 0, ifError, []string{
			"beo beofdisk -probe /dev/vda2", "mke2fs -q -F -t ext4 /dev/vda2", "beo beofdisk -mount /dev/vda2 /scratch ext4 defaults"}, ""},
		{"next boot: checked, kept", "ext", 1, ifError, []string{
			"beo beofdisk -probe /dev/vda2", "e2fsck -p /dev/vda2", "beo beofdisk -mount /dev/vda2 /scratch ext4 defaults"}, ""},
		{"broken, if_error: remade", "ext", 4, ifError, []string{
			"beo beofdisk -probe /dev/vda2", "e2fsck -p /dev/vda2", "mke2fs -q -F -t ext4 /dev/vda2", "beo beofdisk -mount /dev/vda2 /scratch ext4 defaults"}, ""},
		{"broken, never: refused", "ext", 4, Policy{config.MkfsNever, config.FsckSafe}, []string{
			"beo beofdisk -probe /dev/vda2", "e2fsck -p /dev/vda2"}, "errors left"},
		{"mounted already", "ext in-use", 0, ifError, []string{
			"beo beofdisk -probe /dev/vda2", "beo beofdisk -mount /dev/vda2 /scratch ext4 defaults"}, ""},
	} {
		n := &fakeNode{found: tc.found, fsckStatus: tc.fsck}
		_, err := Setup(context.Background(), n, []Line{scratch, {Device: "10.0.0.1:/home", Dir: "/home", Type: "nfs"}}, tc.p)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
			}
		} else if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(n.ran, tc.want) {
			t.Errorf("%s: ran\n%s\nwant\n%s", tc.name, strings.Join(n.ran, "\n"), strings.Join(tc.want, "\n"))
		}
	}
	n := &fakeNode{found: "none"}
	if _, err := Setup(context.Background(), n, []Line{swap}, ifError); err != nil {
		t.Fatal(err)
	}
	if want := []string{"beo beofdisk -probe /dev/vda1", "mkswap /dev/vda1", "beo beofdisk -swapon /dev/vda1"}; !reflect.DeepEqual(n.ran, want) {
		t.Errorf("swap: ran %q, want %q", n.ran, want)
	}
}

// TestSignature makes real filesystems with the host's tools, as the
// master ships them to nodes, and reads their signatures.
func TestSignature(t *testing.T) {
	dir := t.TempDir()
	img := func(name string) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		f.Truncate(16 << 20)
		f.Close()
		return p
	}
	probe := func(p string) Sig {
		t.Helper()
		f, err := ProbeDevice(p, "/nonexistent", "/nonexistent")
		if err != nil {
			t.Fatal(err)
		}
		return f.Sig
	}
	blank := img("blank")
	if got := probe(blank); got != SigNone {
		t.Errorf("blank image: %s, want none", got)
	}
	for _, tc := range []struct {
		tool []string
		want Sig
	}{{[]string{"mke2fs", "-q", "-F", "-t", "ext4"}, SigExt}, {[]string{"mkswap"}, SigSwap}} {
		if _, err := exec.LookPath(tc.tool[0]); err != nil {
			t.Logf("no %s: %v", tc.tool[0], err)
			continue
		}
		p := img(string(tc.want))
		if out, err := exec.Command(tc.tool[0], append(tc.tool[1:], p)...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", tc.tool, err, out)
		}
		if got := probe(p); got != tc.want {
			t.Errorf("%s image: %s, want %s", tc.tool[0], got, tc.want)
		}
	}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("tiny"), 0o644)
	if got := probe(short); got != SigNone {
		t.Errorf("4-byte device: %s, want none", got)
	}
}

func TestInUse(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "vda2")
	os.WriteFile(dev, make([]byte, 8192), 0o644)
	mounts := filepath.Join(dir, "mounts")
	os.WriteFile(mounts, []byte("rootfs / rootfs rw 0 0\n"+dev+" /scratch ext4 rw 0 0\n"), 0o644)
	f, err := ProbeDevice(dev, mounts, "/nonexistent")
	if err != nil || !f.InUse {
		t.Errorf("ProbeDevice of a mounted device = %+v, %v; want in use", f, err)
	}
	if !mountedOn(mounts, dev, "/scratch/") || mountedOn(mounts, dev, "/other") {
		t.Errorf("mountedOn is wrong")
	}
}

func TestParseFound(t *testing.T) {
	for _, f := range []Found{{SigExt, false}, {SigSwap, true}, {SigNone, false}} {
		got, err := ParseFound(f.String() + "\n")
		if err != nil || got != f {
			t.Errorf("ParseFound(%q) = %+v, %v", f.String(), got, err)
		}
	}
	for _, s := range []string{"", "xfs", "ext busy", "ext in-use more"} {
		if _, err := ParseFound(s); err == nil {
			t.Errorf("ParseFound(%q) accepted", s)
		}
	}
}

func TestLines(t *testing.T) {
	text := `# beo fstab
$MASTER:/home /home nfs defaults 0 0
/dev/vda1 swap swap defaults 0 0
/dev/vda2	/scratch ext4 noatime,nonfatal 0 0   # local
/dev/vda3 /data xfs defaults 0 0
none /tmp tmpfs defaults 0 0
`
	tab, err := fstab.Parse("fstab", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := tab.Resolve(fstab.Vars{})
	want := []Line{{"/dev/vda1", "swap", "swap", ""}, {"/dev/vda2", "/scratch", "ext4", "noatime"}}
	if got := Lines(ms); !reflect.DeepEqual(got, want) {
		t.Errorf("Lines = %+v, want %+v", got, want)
	}
}
