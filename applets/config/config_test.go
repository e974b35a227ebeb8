package config

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/applets"
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
	if want := "testdata/cluster.conf:8: warning: server tcp is deprecated; use server beofs2\n"; stderr != want {
		t.Errorf("stderr: got %q, want %q", stderr, want)
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
	} {
		_, _, err := run(args...)
		var u *applets.Usage
		if !errors.As(err, &u) {
			t.Errorf("%q: got %v, want *applets.Usage", args, err)
		}
	}
	if _, _, err := run("check", "-master", "10.0.0.1", "testdata/missing.conf"); err == nil || !strings.Contains(err.Error(), "testdata/missing.conf") {
		t.Errorf("missing file: got %v, want an error naming it", err)
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
