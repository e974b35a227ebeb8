package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/config"
)

func run(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = Run(context.Background(), args, applets.IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return out.String(), errOut.String(), err
}

func TestCheck(t *testing.T) {
	stdout, stderr, err := run("check", "-master", "10.54.0.1", "testdata/cluster.conf")
	if err != nil {
		t.Fatalf("check: %v\n%s", err, stderr)
	}
	wantErr := "testdata/cluster.conf:8: warning: server tcp is deprecated; use server beofs2\n"
	// The boot images the fixture names are looked for on this host.
	for _, im := range []struct {
		line       int
		attr, path string
	}{{9, "kernelimage", "/boot/vmlinuz-6.1.0-18-amd64"}, {10, "initrdimage", "/var/beowulf/boot/computenode.initrd"},
		{12, "kernelimage", "/var/beowulf/boot/vmlinuz-centos5u4_amd64"}} {
		if _, err := os.Stat(im.path); err != nil {
			wantErr += fmt.Sprintf("testdata/cluster.conf:%d: warning: %s %s: no such file or directory; nodes booting it would fail\n", im.line, im.attr, im.path)
		}
	}
	if stderr != wantErr {
		t.Errorf("stderr: got %q, want %q", stderr, wantErr)
	}
	want := `nodes 8
iprange 10.54.0.100 10.54.0.107
hostrange 10.54.10.1 10.54.10.9
interface eth1
server beofs2 932
server beostats 5545
server bproc 933
server http 80
server kickback 3045
server syslog 514
pingtimeout 60
nodeassign append
ipforward yes
node 0 addr=10.54.0.100 mac=52:54:00:00:00:00 class=- sequence=pxe stage=pxe kernel=/boot/vmlinuz-6.1.0-18-amd64 initrd=/var/beowulf/boot/computenode.initrd cmdline="rw root=/dev/ram0 console=ttyS0" names=n0@10.54.0.100,n0-ipmi@10.54.1.100/ipmi line=14
node 1 addr=10.54.0.101 mac=52:54:00:00:00:01,52:54:00:00:01:01 class=- sequence=pxe stage=pxe kernel=/boot/vmlinuz-6.1.0-18-amd64 initrd=/var/beowulf/boot/computenode.initrd cmdline="rw root=/dev/ram0 console=ttyS0" names=n1@10.54.0.101,n1-ipmi@10.54.1.101/ipmi line=15
node 3 addr=10.54.0.103 mac=- class=- sequence=pxe stage=pxe kernel=/boot/vmlinuz-6.1.0-18-amd64 initrd=/var/beowulf/boot/computenode.initrd cmdline="rw root=/dev/ram0 console=ttyS0" names=n3@10.54.0.103,n3-ipmi@10.54.1.103/ipmi line=16
node 5 addr=10.54.0.105 mac=52:54:00:00:00:05 class=centos5u4 sequence=pxe+local stage=pxe kernel=/var/beowulf/boot/vmlinuz-centos5u4_amd64 initrd=none cmdline="rw root=/dev/ram0 console=ttyS0" names=n5@10.54.0.105,n5-ipmi@10.54.1.105/ipmi line=17
host 00:a0:d1:e9:87:ca addr=10.54.10.5 auto=no names=smartswitch,switch0 line=19
host 00:a0:d1:e3:fc:e2 addr=10.54.10.1 auto=yes names=pdu1 line=20
ignore 52:54:00:aa:bb:cc line=18
`
	if stdout != want {
		t.Errorf("stdout:\ngot\n%s\nwant\n%s", stdout, want)
	}
}

// TestCheckMasterOrder: each set of nodes with the same masters, once,
// primary first; nodes no line covers are "-".
func TestCheckMasterOrder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config")
	text := "nodes 6\niprange 10.54.0.100 10.54.0.105\nmasterorder 0-1,4 10.54.1.1 10.54.1.2\nmasterorder 2 10.54.1.2 10.54.1.1\n"
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := run("check", "-master", "10.54.1.1", p)
	if err != nil || stderr != "" {
		t.Fatalf("check: %v\n%s", err, stderr)
	}
	want := "masterorder 0-1,4 10.54.1.1,10.54.1.2\nmasterorder 2 10.54.1.2,10.54.1.1\nmasterorder 3,5 -\n"
	if !strings.HasSuffix(stdout, want) {
		t.Errorf("stdout ends:\n%s\nwant it to end with\n%s", stdout, want)
	}
}

func TestCheckErrors(t *testing.T) {
	stdout, stderr, err := run("check", "-master=10.54.0.250,10.54.0.1", "testdata/broken.conf")
	if err == nil || err.Error() != "4 errors" {
		t.Errorf("got error %v, want 4 errors", err)
	}
	want := `testdata/broken.conf:2: error: iprange 10.54.0.1 10.54.0.4 contains the master's address 10.54.0.1
testdata/broken.conf:3: warning: unknown directive "frobnicate" ignored
testdata/broken.conf:4: error: node 7: number not below nodes 4 (line 1)
testdata/broken.conf:4: error: node 7: address beyond the end 10.54.0.4 of the iprange on line 2
testdata/broken.conf:5: error: MAC 52:54:00:00:00:07 already listed on line 4 (node)
`
	if stderr != want {
		t.Errorf("stderr:\ngot\n%s\nwant\n%s", stderr, want)
	}
	if !strings.Contains(stdout, "node 7 addr=- mac=52:54:00:00:00:07") {
		t.Errorf("stdout lacks node 7:\n%s", stdout)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"frob"},
		{"check", "-bogus"},
		{"check", "-master", "10.0.0.300", "x"},
		{"check", "a", "b"},
		{"example", "x"},
		{"fstab-example", "x"},
	} {
		_, _, err := run(args...)
		var u *applets.Usage
		if !errors.As(err, &u) {
			t.Errorf("%q: got %v, want *applets.Usage", args, err)
		}
	}
	if _, _, err := run("check", "-master", "10.0.0.1", "testdata/missing.conf"); err == nil || !strings.Contains(err.Error(), "testdata/missing.conf") ||
		!strings.Contains(err.Error(), "`beo config example > testdata/missing.conf`") {
		t.Errorf("missing file: got %v, want an error naming it and pointing to beo config example", err)
	}
}

func TestCheckInterfaceNote(t *testing.T) {
	// No -master: the masters come from the interface lines; eth1 in the
	// fixture may or may not exist here, so accept either outcome.
	_, stderr, err := run("check", "testdata/cluster.conf")
	if err != nil {
		t.Fatalf("check: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "server tcp is deprecated") {
		t.Errorf("stderr lacks the warning:\n%s", stderr)
	}
}

// TestCheckRefuses: files that describe no cluster exit non-zero with
// file:line; they used to pass with warnings only.
func TestCheckRefuses(t *testing.T) {
	tests := []struct {
		name, text, stderr string
	}{
		{"empty", "", "x.conf:1: error: no directives: the file is empty or only comments"},
		{"comments", "# nodes 8\n\n", "x.conf:1: error: no directives"},
		{"binary", "nodes 8\niprange 10.54.0.100 10.54.0.107\n\x7fELF\x02\x01\x01\x00\n",
			"x.conf:3: error: not a text file: NUL byte at column 8"},
		{"latin-1", "# J\xfcrgen\nnodes 8\n", "x.conf:1: error: not a text file: invalid UTF-8 byte 0xfc at column 4"},
		{"no node range", "nodes 8\nfrobnicate\n", "x.conf:1: error: no iprange line"},
		{"nodes 0", "iprange 10.54.0.100 10.54.0.107\nnodes 0\n", "x.conf:2: error: nodes 0"},
		{"escape sequence", "nodes 8\niprange 10.54.0.100 10.54.0.107\nnode 1 \x1b[0m52:54:00:00:00:01\n",
			"x.conf:3: error: control character U+001B at column 8; line ignored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.conf")
			if err := os.WriteFile(path, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, stderr, err := run("check", "-master", "10.54.0.1", path)
			if err == nil || err.Error() != "1 error" {
				t.Errorf("got error %v, want 1 error", err)
			}
			if want := filepath.Dir(path) + "/" + tt.stderr; !strings.Contains(stderr, want) {
				t.Errorf("stderr:\n%s\nwant it to hold %q", stderr, want)
			}
		})
	}
}

// TestExample: the example parses with no diagnostic and means what the
// built-in defaults mean.
func TestExample(t *testing.T) {
	example, _, err := run("example")
	if err != nil || example != config.ExampleText {
		t.Fatalf("example: got error %v and %d bytes, want config.ExampleText", err, len(example))
	}
	dir := t.TempDir()
	var outs []string
	for name, text := range map[string]string{"example": example, "default": config.DefaultText} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, err := run("check", "-master", "10.99.0.1", path)
		if err != nil || stderr != "" {
			t.Errorf("check %s: got error %v, stderr\n%s", name, err, stderr)
		}
		outs = append(outs, stdout)
	}
	if outs[0] != outs[1] {
		t.Errorf("check of the example and of the defaults differ:\n%s\n%s", outs[0], outs[1])
	}
}

// TestCheckFstab: check reads the fstab files beside the config, with
// file:line diagnostics that count among the errors.
func TestCheckFstab(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "config")
	os.WriteFile(conf, []byte(config.DefaultText), 0o644)
	fstabExample, _, err := run("fstab-example")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "fstab"), []byte(fstabExample), 0o644)
	os.WriteFile(filepath.Join(dir, "fstab.3"), []byte("none /proc proc\nmaster:/home /home nfs\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "fstab.99"), []byte("none /proc proc\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "fstab.orig"), []byte("junk\n"), 0o644)
	stdout, stderr, err := run("check", "-master", "10.99.0.1", conf)
	if err == nil || err.Error() != "1 error" {
		t.Errorf("got %v, want 1 error", err)
	}
	for _, w := range []string{
		dir + `/fstab.3:2: error: NFS source "master:/home": "master" is not an address`,
		dir + "/fstab.99: warning: the config has no node 99",
		dir + "/fstab.orig: warning: not a node's fstab",
	} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
	for _, w := range []string{"fstab " + dir + "/fstab mounts=8\n", "fstab " + dir + "/fstab.3 mounts=1\n", "fstab " + dir + "/fstab.99 mounts=1\n"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("stdout lacks %q:\n%s", w, stdout)
		}
	}
	if strings.Contains(stderr, dir+"/fstab:") {
		t.Errorf("the example fstab has diagnostics:\n%s", stderr)
	}
}

// TestCheckRefusesFiles: check reads only regular files (through
// symlinks) of bounded size, config and fstab alike, and never blocks.
func TestCheckRefusesFiles(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "config")
	if err := os.WriteFile(conf, []byte(config.DefaultText), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "config")
	if err := os.Symlink(conf, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fstab.3"), 0o644); err != nil {
		t.Fatal(err)
	}
	runBounded := func(args ...string) (string, string, error) {
		type result struct {
			out, errOut string
			err         error
		}
		done := make(chan result, 1)
		go func() {
			o, e, err := run(args...)
			done <- result{o, e, err}
		}()
		select {
		case r := <-done:
			return r.out, r.errOut, r.err
		case <-time.After(10 * time.Second):
			t.Fatalf("%q blocks", args)
		}
		return "", "", nil
	}
	for _, tt := range []struct{ path, want string }{
		{"/dev/zero", "/dev/zero: not a regular file (a character device); refusing to read it"},
		{fifo, fifo + ": not a regular file (a FIFO)"},
		{dir, dir + ": not a regular file (a directory)"},
	} {
		if _, _, err := runBounded("check", "-master", "10.99.0.1", tt.path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("check %s: got %v, want an error containing %q", tt.path, err, tt.want)
		}
	}
	// A symlinked config works; the FIFO fstab.3 beside the real file is
	// an error naming it.
	if _, stderr, err := runBounded("check", "-master", "10.99.0.1", link); err != nil || stderr != "" {
		t.Errorf("check through a symlink: got %v\n%s", err, stderr)
	}
	_, stderr, err := runBounded("check", "-master", "10.99.0.1", conf)
	if err == nil || err.Error() != "1 error" {
		t.Errorf("check with a FIFO fstab.3: got %v, want 1 error", err)
	}
	if want := dir + "/fstab.3: error: not a regular file (a FIFO); refusing to read it\n"; !strings.Contains(stderr, want) {
		t.Errorf("stderr:\n%s\nwant it to hold %q", stderr, want)
	}
}

// TestCheckKernel: with a module tree (-m, as beoboot's), bootmodule
// names the tree lacks are errors, and fstab types its file systems
// provide are known.
func TestCheckKernel(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "6.1.0-test")
	os.MkdirAll(tree, 0o755)
	deps := "kernel/drivers/net/ethernet/intel/e1000/e1000.ko.xz:\nkernel/fs/zonefs/zonefs.ko.xz:\n"
	if err := os.WriteFile(filepath.Join(tree, "modules.dep"), []byte(deps), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tree, "modules.builtin"), []byte("kernel/drivers/block/virtio_blk.ko\n"), 0o644)
	conf := filepath.Join(dir, "config")
	os.WriteFile(conf, []byte(config.DefaultText+"bootmodule e1000 virtio-blk\nbootmodule nosuchmodule_xyz\nkernelimage 64-70 none\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "fstab"), []byte("/dev/sda3 /a zonefs\n/dev/sda4 /b bogusfs\n"), 0o644)
	_, stderr, err := run("check", "-master", "10.99.0.1/24", "-m", tree, conf)
	if err == nil || err.Error() != "1 error" {
		t.Errorf("got %v, want 1 error", err)
	}
	want := conf + ":10: error: bootmodule nosuchmodule_xyz: no such module in the nodes' kernel (not in its modules.dep nor built in); building the boot image would fail\n" +
		conf + ":11: warning: kernelimage 64-70: the cluster has nodes 0-63; the line applies to no node\n" +
		dir + `/fstab:2: warning: unknown file system type "bogusfs": the mount fails unless the node's kernel has it (built in or a module)` + "\n"
	if stderr != want {
		t.Errorf("stderr:\n%s\nwant\n%s", stderr, want)
	}
	if _, _, err := run("check", "-master", "10.99.0.1", "-m", filepath.Join(dir, "none"), conf); err == nil || !strings.Contains(err.Error(), "modules.dep") {
		t.Errorf("-m without a modules.dep: got %v, want an error", err)
	}
}

// TestCheckNetwork: -master ADDR/BITS names the cluster network, whose
// network and broadcast addresses no range may hold.
func TestCheckNetwork(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config")
	os.WriteFile(p, []byte("nodes 8\niprange 10.54.0.250 10.54.1.5\n"), 0o644)
	if _, stderr, err := run("check", "-master", "10.54.0.1/16", p); err != nil || stderr != "" {
		t.Errorf("in a /16: got %v\n%s", err, stderr)
	}
	_, stderr, err := run("check", "-master", "10.54.0.1/24", p)
	if want := p + ":2: error: iprange 10.54.0.250 10.54.1.5 holds 10.54.0.255, the broadcast address of the cluster network 10.54.0.0/24\n"; err == nil || stderr != want {
		t.Errorf("in a /24: got %v\n%s\nwant\n%s", err, stderr, want)
	}
	_, stderr, _ = run("check", "-master", "10.54.0.1", p)
	if want := "holds 10.54.0.255, the network or broadcast address of a /24"; !strings.Contains(stderr, want) {
		t.Errorf("no network: stderr\n%s\nwant it to hold %q", stderr, want)
	}
	if _, _, err := run("check", "-master", "10.54.0.1/33", p); err == nil {
		t.Error("-master 10.54.0.1/33: got no error")
	}
}
