package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/elfdeps"
	"github.com/beo-cluster/beo/pkg/lab"
	"github.com/u-root/u-root/pkg/cpio"
)

// TestLabDirectBoot proves the network and process plumbing: a VM boots the
// Debian kernel with a busybox initrd built here, loads virtio-net, pings
// the master's address on the bridge, and powers off; then the namespace
// is gone.
func TestLabDirectBoot(t *testing.T) {
	if err := lab.Check(true); err != nil {
		t.Skip(err)
	}
	kernel, version, err := lab.Kernel("/")
	if err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	accel, why := pxeAccel()
	t.Logf("accel %s (%s)", accel, why)
	initrd := filepath.Join(dir, "initrd")
	if err := labInitrd(initrd, version, "10.99.0.50/24", lab.DefaultAddr.Addr().String()); err != nil {
		t.Fatal(err)
	}
	l, err := lab.New(ctx, lab.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	m, err := l.Boot(ctx, lab.VM{Name: "vm0", MAC: lab.MAC(0), Accel: accel, Kernel: kernel, Initrd: initrd,
		Append: "console=ttyS0 panic=-1", NoReboot: true})
	if err != nil {
		t.Fatal(err)
	}
	initLine, _, err := m.WaitSerial(ctx, "LAB-INIT", 0)
	if err != nil {
		t.Fatal(err)
	}
	pong, _, err := m.WaitSerial(ctx, "LAB-PING-", 0)
	if err != nil {
		t.Fatal(err)
	}
	if pong.Text != "LAB-PING-OK" {
		t.Fatalf("guest says %q, want LAB-PING-OK; serial in %s:\n%s", pong.Text, m.Serial, m.SerialTail(30))
	}
	t.Logf("qemu start → /init %v, → ping answered %v", initLine.T.Sub(start).Round(time.Millisecond), pong.T.Sub(start).Round(time.Millisecond))
	select {
	case <-m.Done():
	case <-ctx.Done():
		t.Fatalf("qemu did not exit after poweroff")
	}
	ns := l.NS
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte(ns)) {
		t.Errorf("namespace %s still listed after Close:\n%s", ns, out)
	}
	b, err := os.ReadFile(m.Serial)
	if err != nil || !bytes.Contains(b, []byte("LAB-PING-OK")) {
		t.Errorf("serial file %s lacks the marker (err %v)", m.Serial, err)
	}
}

// labInitrd writes a newc initrd: busybox and its libraries, the virtio
// NIC modules of kernel version, and an /init that configures addr, pings
// peer and prints LAB-PING-OK or LAB-PING-FAIL before powering off.
func labInitrd(path, version, addr, peer string) error {
	var recs []cpio.Record
	dirs := map[string]bool{}
	dir := func(d string) {
		var parts []string
		for d != "." && d != "/" && d != "" {
			parts = append(parts, d)
			d = filepath.Dir(d)
		}
		for i := len(parts) - 1; i >= 0; i-- {
			if !dirs[parts[i]] {
				dirs[parts[i]] = true
				recs = append(recs, cpio.Directory(parts[i], 0o755))
			}
		}
	}
	file := func(name string, data []byte, mode uint64) {
		name = strings.TrimPrefix(name, "/")
		dir(filepath.Dir(name))
		recs = append(recs, cpio.StaticFile(name, string(data), mode))
	}
	for _, d := range []string{"dev", "proc", "sys", "bin", "tmp"} {
		dir(d)
	}
	recs = append(recs, cpio.CharDev("dev/console", 0o600, 5, 1))
	files, err := elfdeps.Closure("/", "/bin/busybox", elfdeps.Options{})
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f.Real)
		if err != nil {
			return err
		}
		file(f.Path, b, 0o755)
	}
	recs = append(recs, cpio.Symlink("bin/sh", "busybox"))
	mods, err := labModuleOrder(version, "kernel/drivers/virtio/virtio_pci.ko", "kernel/drivers/net/virtio_net.ko")
	if err != nil {
		return err
	}
	var insmod strings.Builder
	for _, m := range mods {
		b, err := os.ReadFile(filepath.Join("/lib/modules", version, m))
		if err != nil {
			return err
		}
		file("/lib/modules/"+filepath.Base(m), b, 0o644)
		insmod.WriteString("busybox insmod /lib/modules/" + filepath.Base(m) + "\n")
	}
	init := `#!/bin/sh
export PATH=/bin
busybox mount -t devtmpfs dev /dev
busybox mount -t proc proc /proc
busybox mount -t sysfs sys /sys
echo LAB-INIT
` + insmod.String() + `busybox ip link set eth0 up
busybox ip addr add ` + addr + ` dev eth0
r=LAB-PING-FAIL
for i in 1 2 3 4 5 6 7 8 9 10; do
  if busybox ping -c 1 -W 2 ` + peer + ` >/dev/null 2>&1; then r=LAB-PING-OK; break; fi
done
echo $r
busybox poweroff -f
`
	file("/init", []byte(init), 0o755)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := cpio.Newc.Writer(f)
	if err := cpio.WriteRecords(w, recs); err != nil {
		f.Close()
		return err
	}
	if err := cpio.WriteTrailer(w); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// labModuleOrder returns the modules.dep load order for targets: each
// target's dependencies (last listed first) before it, without repeats.
func labModuleOrder(version string, targets ...string) ([]string, error) {
	f, err := os.Open(filepath.Join("/lib/modules", version, "modules.dep"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	deps := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			deps[k] = strings.Fields(v)
		}
	}
	var order []string
	for _, t := range targets {
		d, ok := deps[t]
		if !ok {
			return nil, os.ErrNotExist
		}
		for i := len(d) - 1; i >= 0; i-- {
			if !slices.Contains(order, d[i]) {
				order = append(order, d[i])
			}
		}
		if !slices.Contains(order, t) {
			order = append(order, t)
		}
	}
	return order, sc.Err()
}
