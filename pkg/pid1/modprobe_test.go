package pid1

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestResolve: the kernel's requests name a module or an alias (a mount
// of an unregistered type asks for fs-TYPE); resolve answers as modprobe
// would, from the initrd's modules.dep and modules.alias left in /run.
func TestResolve(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(nfsDep+"kernel/fs/ext4/ext4.ko:\nkernel/crypto/crc32c_generic.ko:\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.alias"), []byte(`alias fs-nfs4 nfsv4
alias nfs4 nfsv4
alias fs-ext4 ext4
alias fs-ext3 ext4
alias crypto-crc32c-generic crc32c_generic
alias crypto-crc32c crc32c_generic
alias virtio:d00000001v* virtio_net
`), 0o644)
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"fs-nfs4", []string{"nfsv4"}},
		{"fs-ext3", []string{"ext4"}},
		{"nfsv4", []string{"nfsv4"}},
		{"crc32c-generic", []string{"crc32c_generic"}}, // modprobe treats - and _ alike in names
		{"crypto-crc32c", []string{"crc32c_generic"}},
		{"virtio:d00000001v00001AF4", []string{"virtio_net"}},
	} {
		got, err := resolve(dir, tc.name)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("resolve(%q) = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if got, err := resolve(dir, "fs-beo-no-such-fs"); !errors.Is(err, errNoModule) {
		t.Errorf("resolve of an unknown name = %v, %v; want errNoModule", got, err)
	}
	// Without an alias file only module names resolve.
	os.Remove(filepath.Join(dir, "modules.alias"))
	if got, err := resolve(dir, "fs-nfs4"); !errors.Is(err, errNoModule) {
		t.Errorf("without modules.alias: resolve(fs-nfs4) = %v, %v", got, err)
	}
	if got, err := resolve(dir, "ext4"); err != nil || !slices.Equal(got, []string{"ext4"}) {
		t.Errorf("without modules.alias: resolve(ext4) = %v, %v", got, err)
	}
}

// TestModprobeArgs: what the kernel passes (-q -- NAME) and a bare
// modprobe call are both understood; a missing name is a usage error,
// and -q keeps the reason off stderr.
func TestModprobeArgs(t *testing.T) {
	var asked []string
	load := func(name string) ([]string, error) {
		asked = append(asked, name)
		if name == "fs-nfs4" {
			return []string{"nfsv4"}, nil
		}
		return nil, errNoModule
	}
	var out, kmsg bytes.Buffer
	if code := modprobe([]string{"-q", "--", "fs-nfs4"}, &out, &kmsg, load); code != 0 || out.Len() != 0 || kmsg.String() != "beo-modprobe: fs-nfs4: loaded nfsv4\n" {
		t.Errorf("the kernel's call: code %d, stderr %q, kmsg %q", code, out.String(), kmsg.String())
	}
	out.Reset()
	kmsg.Reset()
	if code := modprobe(nil, &out, &kmsg, load); code != 1 || !strings.Contains(out.String(), "usage:") {
		t.Errorf("no name: code %d, %q", code, out.String())
	}
	out.Reset()
	if code := modprobe([]string{"-q", "--", "fs-nope"}, &out, &kmsg, load); code != 1 || out.Len() != 0 || !strings.Contains(kmsg.String(), "fs-nope: no such module") {
		t.Errorf("-q unknown: code %d, stderr %q, kmsg %q", code, out.String(), kmsg.String())
	}
	out.Reset()
	if code := modprobe([]string{"-v", "fs-nope", "opt=1"}, &out, &kmsg, load); code != 1 || !strings.Contains(out.String(), "fs-nope") {
		t.Errorf("unknown: code %d, %q", code, out.String())
	}
	if want := []string{"fs-nfs4", "fs-nope", "fs-nope"}; !slices.Equal(asked, want) {
		t.Errorf("names asked for %v, want %v", asked, want)
	}
}
