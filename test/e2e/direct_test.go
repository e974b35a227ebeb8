package e2e

// TestDirectBoot proves the node side alone (beoboot's initrd and rootfs,
// beoclient as PID 1) without beo's own boot server: QEMU boots the
// Debian kernel directly (-kernel/-initrd/-append) in a network
// namespace this test creates, busybox udhcpd and busybox httpd stand in
// for DHCP and the rootfs server, and `beo bpmaster` alone receives the
// node.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/initramfs"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/test/netns"
)

const (
	directBootWait = 90 * time.Second // TCG boot ≈ 5–10 s; the host is shared
	directMaster   = "10.99.0.1"
	directNode     = "10.99.0.100"
	directHTTP     = "8080"
	directBProc    = "933"
)

func TestDirectBoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespace, tap device)")
	}
	for _, tool := range []string{"qemu-system-x86_64", "busybox", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	kernel, release := directKernel(t)
	exe := netns.Beo(t)
	dir := t.TempDir()
	ns := fmt.Sprintf("beo-direct-%d", os.Getpid())
	directNetns(t, ns)

	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := write("config", "interface br0\nnodes 1\niprange "+directNode+" "+directNode+"\npingtimeout 30\n")
	libs := write("libraries", "# none\n")
	keys := filepath.Join(dir, "keys")
	boot := filepath.Join(dir, "www", "boot")

	// The boot package, built by the binary under test.
	out := directRun(t, exe, "", "beoboot", "-o", boot, "-k", kernel, "-keys", keys, "-config", cfg, "-libs", libs)
	if !strings.Contains(out, "rebuilt") {
		t.Fatalf("beoboot: %q, want a fresh build", out)
	}
	if out := directRun(t, exe, "", "beoboot", "-o", boot, "-k", kernel, "-keys", keys, "-config", cfg, "-libs", libs); !strings.Contains(out, "up to date") {
		t.Errorf("second beoboot: %q, want up to date", out)
	}

	// Third-party servers: DHCP and HTTP.
	udhcpd := write("udhcpd.conf", strings.Join([]string{
		"start " + directNode, "end " + directNode, "interface br0", "max_leases 1",
		"lease_file " + filepath.Join(dir, "udhcpd.leases"), "pidfile " + filepath.Join(dir, "udhcpd.pid"),
		"option subnet 255.255.255.0", "option lease 3600", "",
	}, "\n"))
	write("udhcpd.leases", "")
	directStart(t, dir, "udhcpd", "ip", "netns", "exec", ns, "busybox", "udhcpd", "-f", udhcpd)
	directStart(t, dir, "httpd", "ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", directMaster+":"+directHTTP, "-h", filepath.Join(dir, "www"))

	// bpmaster alone, on the bridge address.
	socket := filepath.Join(dir, "bpmaster.sock")
	directStart(t, dir, "bpmaster", "ip", "netns", "exec", ns, exe, "bpmaster", "-config", cfg, "-keys", keys,
		"-listen", directMaster+":"+directBProc, "-socket", socket, "-logdir", filepath.Join(dir, "log"),
		"-node-up", filepath.Join(dir, "no-node-up"), "-libs", libs)
	directWait(t, 10*time.Second, "bpmaster socket", func() bool { _, err := os.Stat(socket); return err == nil })

	serial := filepath.Join(dir, "serial.log")
	appendLine := strings.Join([]string{"console=ttyS0", "panic=-1",
		"beo.master=" + directMaster, "beo.bproc=" + directBProc, "beo.http=" + directHTTP,
		"beo.rootfs=/boot/" + initramfs.RootfsFile, "rootfs_size=128m"}, " ")
	started := time.Now()
	qemu := directStart(t, dir, "qemu", "ip", "netns", "exec", ns, "qemu-system-x86_64",
		"-accel", "tcg", "-m", "256M", "-smp", "1", "-nographic", "-nodefaults", "-no-reboot",
		"-serial", "file:"+serial, "-kernel", filepath.Join(boot, initramfs.KernelFile),
		"-initrd", filepath.Join(boot, initramfs.InitrdFile), "-append", appendLine,
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac=52:54:00:be:00:01")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(serial)
			t.Logf("serial log:\n%s", b)
		}
	})

	// Up in the master's table, and the node's own word on the console.
	directWait(t, directBootWait, "node 0 up and the ready marker", func() bool {
		if qemu.ProcessState != nil {
			t.Fatalf("qemu exited before the node came up: %v", qemu.ProcessState)
		}
		log, _ := os.ReadFile(serial)
		return directState(socket, 0) == "up" && bytes.Contains(log, []byte("msg=\""+pid1ReadyMarker+"\""))
	})
	t.Logf("node 0 up %.1f s after qemu started", time.Since(started).Seconds())

	if got := strings.TrimSpace(directRun(t, exe, socket, "bpsh", "0", "uname", "-r")); got != release {
		t.Errorf("bpsh 0 uname -r = %q, want %q", got, release)
	}
	log, _ := os.ReadFile(serial)
	for _, want := range []string{"kernel modules loaded", "switching to the node root", "rootfs unpacked", `msg="service started" service=bpslave`} {
		if !bytes.Contains(log, []byte(want)) {
			t.Errorf("serial log lacks %q", want)
		}
	}

	// bpctl -R: the node reboots; with -no-reboot, qemu exits.
	directRun(t, exe, socket, "bpctl", "-S", "0", "-R")
	directWait(t, 30*time.Second, "qemu to exit on the node's reboot", func() bool { return qemu.ProcessState != nil })
	if log, _ := os.ReadFile(serial); !bytes.Contains(log, []byte("reboot: Restarting system")) {
		t.Errorf("serial log lacks the kernel's restart message")
	}
}

// pid1ReadyMarker mirrors pid1.ReadyMarker (kept literal: the test reads
// the console as an admin would).
const pid1ReadyMarker = "node ready"

// directKernel picks the newest /boot/vmlinuz-* with its modules installed.
func directKernel(t *testing.T) (path, release string) {
	imgs, _ := filepath.Glob("/boot/vmlinuz-*")
	sort.Sort(sort.Reverse(sort.StringSlice(imgs)))
	for _, img := range imgs {
		rel := strings.TrimPrefix(filepath.Base(img), "vmlinuz-")
		if _, err := os.Stat(filepath.Join("/lib/modules", rel, "modules.dep")); err == nil {
			return img, rel
		}
	}
	t.Skip("needs a kernel in /boot with its modules in /lib/modules (Debian linux-image-amd64)")
	return "", ""
}

// directNetns creates namespace ns with bridge br0 (the master's address)
// and tap0 on it, and deletes it at cleanup.
func directNetns(t *testing.T, ns string) {
	t.Helper()
	ip := func(args ...string) {
		t.Helper()
		if b, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", ns, "link", "set", "lo", "up")
	ip("-n", ns, "link", "add", "br0", "type", "bridge")
	ip("-n", ns, "link", "set", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
	ip("-n", ns, "addr", "add", directMaster+"/24", "dev", "br0")
	ip("-n", ns, "link", "set", "br0", "up")
	ip("-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
	ip("-n", ns, "link", "set", "tap0", "master", "br0", "up")
}

// directStart starts a server with its output in dir/name.log and stops
// it (by pid) at cleanup. ProcessState is set once it has exited.
func directStart(t *testing.T, dir, name string, args ...string) *exec.Cmd {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit", name, cmd.Process.Pid)
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
			t.Logf("%s output:\n%s", name, b)
		}
	})
	return cmd
}

// directRun runs the beo binary (with BEO_SOCKET when socket is set),
// bounded, and returns its stdout; failure fails the test.
func directRun(t *testing.T, exe, socket string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, args...)
	if socket != "" {
		cmd.Env = append(os.Environ(), bproc.SocketEnv+"="+socket)
	}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ctx.Err() != nil {
			t.Fatalf("beo %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		t.Fatalf("beo %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// directState returns node n's state in the master's table ("" if the
// master cannot be asked).
func directState(socket string, n int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := bproc.Dial(ctx, socket)
	if err != nil {
		return ""
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		return ""
	}
	for _, ni := range st.Nodes {
		if ni.Node == n {
			return ni.State
		}
	}
	return ""
}

// directWait polls cond every 200 ms until it holds or d passes.
func directWait(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
