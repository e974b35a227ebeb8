package fdisk

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// loopDisk attaches a size-byte image as a loop device with partition
// scanning (root, losetup), detached at the end of the test.
func loopDisk(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: a loop device")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("needs losetup")
	}
	out, err := exec.Command("losetup", "--find", "--show", "--partscan", image(t, size)).Output()
	if err != nil {
		t.Skipf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

// kernelParts is what the kernel holds for dev's partitions, from
// sysfs: number → start and size in 512-byte units.
func kernelParts(t *testing.T, dev string) map[int][2]int64 {
	t.Helper()
	name := filepath.Base(dev)
	ents, err := os.ReadDir(filepath.Join("/sys/class/block", name))
	if err != nil {
		t.Fatal(err)
	}
	read := func(p string) int64 {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	m := map[int][2]int64{}
	for _, e := range ents {
		dir := filepath.Join("/sys/class/block", name, e.Name())
		if !strings.HasPrefix(e.Name(), name+"p") {
			continue
		}
		m[int(read(filepath.Join(dir, "partition")))] = [2]int64{read(filepath.Join(dir, "start")), read(filepath.Join(dir, "size"))}
	}
	return m
}

func wantParts(ext []Extent) map[int][2]int64 {
	m := map[int][2]int64{}
	for _, e := range ext {
		m[e.Index] = [2]int64{int64(e.Start) * e.Sector / 512, e.Bytes() / 512}
	}
	return m
}

func equalParts(a, b map[int][2]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestApplyBlockDevice: on a block device Apply's table reaches the
// kernel — by BLKRRPART, and by BLKPG for the changed partitions while
// one that stays is held open (BLKRRPART then refuses).
func TestApplyBlockDevice(t *testing.T) {
	dev := loopDisk(t, 64<<20)
	first := Disk{Name: "loop", Parts: []Part{{Type: Swap, Size: Size{Bytes: 8 << 20}}, {Type: Linux, Size: Size{Rest: true}}}}
	ext, err := Apply(dev, first)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Read(dev); err != nil || !reflect.DeepEqual(got, ext) {
		t.Fatalf("Read(%s) = %v, %v; want %v", dev, got, err, ext)
	}
	got, want := kernelParts(t, dev), wantParts(ext)
	if len(got) == 0 {
		// A kernel without a GPT parser (CONFIG_EFI_PARTITION unset, as
		// some VMs' are) reads no partitions: give it them by hand, as
		// the busy path below does.
		t.Logf("%s: the kernel read no partitions (no GPT parser?); adding them with BLKPG", dev)
		f, err := os.Open(dev)
		if err != nil {
			t.Fatal(err)
		}
		for n, p := range want {
			if err := blkpg(int(f.Fd()), unix.BLKPG_ADD_PARTITION, n, place{p[0] * 512, p[1] * 512}); err != nil {
				t.Fatalf("BLKPG add %d: %v", n, err)
			}
		}
		f.Close()
	} else if !equalParts(got, want) {
		t.Fatalf("after BLKRRPART the kernel has %v, want %v", got, want)
	}

	// Partition 1 stays and is held open; 2 shrinks, 3 is new.
	held, err := os.Open(partNode(t, dev, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	second := Disk{Name: "loop", Parts: []Part{{Type: Swap, Size: Size{Bytes: 8 << 20}}, {Type: Linux, Size: Size{Bytes: 16 << 20}}, {Type: Linux, Size: Size{Rest: true}}}}
	if ext, err = Apply(dev, second); err != nil {
		t.Fatal(err)
	}
	if got, want := kernelParts(t, dev), wantParts(ext); !equalParts(got, want) {
		t.Fatalf("after BLKPG the kernel has %v, want %v", got, want)
	}

	// Partition 1 changes while it is held: the table is written, the
	// kernel keeps the old partition, and Apply says so.
	third := Disk{Name: "loop", Parts: []Part{{Type: Linux, Size: Size{Rest: true}}}}
	if _, err := Apply(dev, third); err == nil || !strings.Contains(err.Error(), "until a reboot") {
		t.Errorf("Apply changing a held partition: %v, want an error naming the reboot", err)
	}
}

// partNode makes a device node for partition n of dev in a temp dir
// (a container's /dev may not get one) and returns its path.
func partNode(t *testing.T, dev string, n int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/sys/class/block/%sp%d/dev", filepath.Base(dev), n))
	if err != nil {
		t.Fatal(err)
	}
	var major, minor uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &major, &minor); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "part")
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor))); err != nil {
		t.Fatal(err)
	}
	return p
}
