package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUsable: what a file gives must be usable by a real master and its
// nodes: ports that can all be bound, addresses a node can have, MACs a
// NIC can have, names that name one thing.
func TestUsable(t *testing.T) {
	master := []netip.Addr{netip.MustParseAddr("10.54.0.1")}
	const base = "nodes 32\niprange 10.54.0.100 10.54.0.131\n" // lines 1-2
	const hr = "hostrange 10.54.10.1 10.54.10.9\n"             // line 3 after base
	tests := []struct {
		name     string
		text     string
		masters  []netip.Addr
		networks []netip.Prefix
		want     []want
	}{
		// Ports.
		{"http on bproc's port", base + "server http 933\n", nil, nil,
			[]want{{3, Error, "server http 933: TCP port 933 is also that of server bproc (its default); beo master cannot bind both"}}},
		{"bproc on kickback's port", base + "server bproc 3045\n", nil, nil,
			[]want{{3, Error, "server bproc 3045: TCP port 3045 is also that of server kickback (its default)"}}},
		{"two lines one port", base + "server bproc 1000\nserver kickback 1000\n", nil, nil,
			[]want{{4, Error, "server kickback 1000: TCP port 1000 is also that of server bproc (line 3)"}}},
		{"two udp", base + "server syslog 5545\n", nil, nil,
			[]want{{3, Error, "server syslog 5545: UDP port 5545 is also that of server beostats (its default)"}}},
		{"tcp and udp may share", base + "server syslog 933\nserver beostats 80\n", nil, nil, nil},
		{"tftp", base + "server syslog 69\n", nil, nil,
			[]want{{3, Error, "UDP port 69 is also that of the boot server's TFTP (beo master -tftp-port)"}}},
		{"dhcp", base + "server beostats 67\n", nil, nil,
			[]want{{3, Error, "UDP port 67 is also that of the boot server's DHCP"}}},
		{"beofs2 is unused", base + "server beofs2 933\n", nil, nil,
			[]want{{3, Warning, "server beofs2 933: TCP port 933 is also that of server bproc (its default); beo binds no beofs2 port"}}},
		{"nfs", base + "server http 2049\n", nil, nil,
			[]want{{3, Warning, "TCP port 2049 is also that of the NFS server"}}},
		{"moved out of the way", base + "server http 933\nserver bproc 934\n", nil, nil, nil},

		// Ranges.
		{"multicast iprange", "iprange 224.0.0.1 224.0.0.10\n", nil, nil,
			[]want{{1, Error, "iprange 224.0.0.1 224.0.0.10 holds multicast addresses"}}},
		{"unspecified iprange", "iprange 0.0.0.0 0.0.0.9\n", nil, nil,
			[]want{{1, Error, "holds unspecified"}}},
		{"broadcast iprange", "iprange 255.255.255.250 255.255.255.255\n", nil, nil,
			[]want{{1, Error, "holds the limited broadcast address 255.255.255.255"}}},
		{"reserved iprange", "iprange 240.0.0.1 240.0.0.9\n", nil, nil,
			[]want{{1, Error, "holds reserved addresses"}}},
		{"link-local iprange", "iprange 169.254.0.10 169.254.0.20\n", nil, nil,
			[]want{{1, Error, "holds link-local addresses"}}},
		{"range across multicast", "iprange 223.255.255.250 224.0.0.5\n", nil, nil,
			[]want{{1, Error, "holds multicast addresses"}}},
		{"multicast hostrange", base + "hostrange 239.0.0.1 239.0.0.9\n", nil, nil,
			[]want{{3, Error, "hostrange 239.0.0.1 239.0.0.9 holds multicast addresses"}}},
		{"loopback simulation", "iprange 127.1.0.1 127.1.0.8\n", nil, nil,
			[]want{{1, Warning, "holds loopback addresses (127.0.0.0/8): fine for a simulated cluster (beo sim)"}}},
		{"loopback with a loopback master", "iprange 127.1.0.1 127.1.0.8\n", []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil,
			[]want{{1, Warning, "fine for a simulated cluster"}}},
		{"loopback with a real master", "iprange 127.1.0.1 127.1.0.8\n", master, nil,
			[]want{{1, Error, "holds loopback addresses (127.0.0.0/8), which only this host has; the master's address is 10.54.0.1"}}},
		{"x.x.x.255 without a network", "iprange 10.54.0.200 10.54.1.10\n", nil, nil,
			[]want{{1, Warning, "iprange 10.54.0.200 10.54.1.10 holds 10.54.0.255, the network or broadcast address of a /24: fine only if the cluster network is wider"}}},
		{"x.x.x.0 without a network", "iprange 10.54.1.0 10.54.1.10\n", nil, nil,
			[]want{{1, Warning, "holds 10.54.1.0"}}},
		{"across .255 in a /16", "iprange 10.54.0.200 10.54.1.10\n", master, []netip.Prefix{netip.MustParsePrefix("10.54.0.1/16")}, nil},
		{"broadcast of the /24", "iprange 10.54.0.100 10.54.0.255\n", master, []netip.Prefix{netip.MustParsePrefix("10.54.0.1/24")},
			[]want{{1, Error, "iprange 10.54.0.100 10.54.0.255 holds 10.54.0.255, the broadcast address of the cluster network 10.54.0.0/24"}}},
		{"network of the /16", "iprange 10.54.0.0 10.54.0.10\n", []netip.Addr{netip.MustParseAddr("10.54.1.1")}, []netip.Prefix{netip.MustParsePrefix("10.54.1.1/16")},
			[]want{{1, Error, "holds 10.54.0.0, the network address of the cluster network 10.54.0.0/16"}}},
		{"broadcast of a 4in6 network", "iprange 10.54.0.100 10.54.0.255\n", nil, []netip.Prefix{netip.MustParsePrefix("::ffff:10.54.0.1/120")},
			[]want{{1, Error, "the broadcast address of the cluster network 10.54.0.0/24"}}},
		{"a /31 has no broadcast", "iprange 10.54.0.255 10.54.0.255\n", nil, []netip.Prefix{netip.MustParsePrefix("10.54.0.254/31")}, nil},

		// MACs and node numbers.
		{"broadcast MAC", base + "node 3 ff:ff:ff:ff:ff:ff\n", nil, nil,
			[]want{{3, Error, "node: MAC ff:ff:ff:ff:ff:ff is the broadcast address"}}},
		{"zero MAC", base + "node 3 00:00:00:00:00:00\n", nil, nil,
			[]want{{3, Error, "node: MAC 00:00:00:00:00:00 is the zero address"}}},
		{"multicast MAC", base + "node 3 00:a0:d1:e5:c4:6e 01:00:5e:00:00:01\n", nil, nil,
			[]want{{3, Error, "node: MAC 01:00:5e:00:00:01 is a multicast (group) address"}}},
		{"multicast host MAC", base + hr + "host 33:33:00:00:00:01 sw\n", nil, nil,
			[]want{{4, Error, "host: MAC 33:33:00:00:00:01 is a multicast"}}},
		{"multicast ignore MAC", base + "ignore 01:00:5e:00:00:01\n", nil, nil,
			[]want{{3, Warning, "ignore: MAC 01:00:5e:00:00:01 is a multicast (group) address (the first octet is odd), which no NIC sends from: the line can never match"}}},
		{"locally administered MAC", base + "node 3 02:00:00:00:00:01\n", nil, nil, nil},
		{"negative node number", base + "node -1 00:11:22:33:44:55\n", nil, nil,
			[]want{{3, Error, "node: bad node number -1 (want 0-1048575)"}}},
		{"signed node number", base + "node +3 00:11:22:33:44:55\n", nil, nil,
			[]want{{3, Error, "node: bad node number +3"}}},

		// Names.
		{"one host name at two addresses", base + hr + "host 00:a0:d1:e9:87:c1 10.54.10.1 sw\nhost 00:a0:d1:e9:87:c2 10.54.10.2 SW\n", nil, nil,
			[]want{{5, Error, "host 00:a0:d1:e9:87:c2: name SW is already host 10.54.10.1's on line 4: one name at two addresses"}}},
		{"host name of an automatic address", base + hr + "host 00:a0:d1:e9:87:c1 sw\nhost 00:a0:d1:e9:87:c2 sw\n", nil, nil,
			[]want{{5, Error, "name sw is already host 10.54.10.1's on line 4"}}},
		{"host name is a node's", base + hr + "nodename n%N\nhost 00:a0:d1:e9:87:c1 n3\n", nil, nil,
			[]want{{5, Error, "host 00:a0:d1:e9:87:c1: name n3 is node 3's (nodename n%N, line 4): one name at two addresses"}}},
		{"host name is an offset name", base + hr + "nodename n%N-ipmi 0.0.1.0 ipmi\nhost 00:a0:d1:e9:87:c1 N7-IPMI\n", nil, nil,
			[]want{{5, Error, "name N7-IPMI is node 7's (nodename n%N-ipmi, line 4)"}}},
		{"host name beyond the nodes", base + hr + "nodename n%N\nhost 00:a0:d1:e9:87:c1 n32 n03\n", nil, nil, nil},
		{"host name nN without nodename", base + hr + "host 00:a0:d1:e9:87:c1 n3\n", nil, nil,
			[]want{{4, Warning, "name n3 is how bpsh, bpstat and the other BProc tools name node 3"}}},
		{"host name master", base + hr + "host 00:a0:d1:e9:87:c1 Master\n", nil, nil,
			[]want{{4, Error, "name Master is the master's own name"}}},
		{"nodename twice", base + "nodename n%N\nnodename n%N\n", nil, nil,
			[]want{{4, Warning, "nodename n%N repeats line 3: every name is given twice"}}},
		{"nodename at two offsets", base + "nodename n%N\nnodename n%N 0.0.1.0\n", nil, nil,
			[]want{{4, Error, "nodename n%N: line 3 gives the same names at another offset"}}},
		{"nodenames differ", base + "nodename n%N\nnodename n%N-ipmi 0.0.1.0 ipmi\n", nil, nil, nil},

		// Node specs that hold no node.
		{"kernelimage for no node", base + "kernelimage 40-50 /boot/vmlinuz\n", nil, nil,
			[]want{{3, Warning, "kernelimage 40-50: the cluster has nodes 0-31; the line applies to no node"}}},
		{"cmdline for no node", base + "kernelcommandline 32,40 console=ttyS0\n", nil, nil,
			[]want{{3, Warning, "kernelcommandline 32,40: the cluster has nodes 0-31"}}},
		{"kernelimage for some nodes", base + "kernelimage 30-50 /boot/vmlinuz\n", nil, nil, nil},
		{"one node", "nodes 1\niprange 10.54.0.100 10.54.0.131\ninitrdimage 1 /boot/initrd\n", nil, nil,
			[]want{{3, Warning, "initrdimage 1: the cluster has node 0"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.conf", []byte(withRange(tt.text)), Options{Masters: tt.masters, Networks: tt.networks})
			checkDiags(t, c, err, tt.want)
		})
	}
}

// TestBootFiles: with Options.Module and Options.Stat, bootmodule names
// and image paths are looked up as the boot image build and the boot
// server would.
func TestBootFiles(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(kernel, []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	modules := map[string]bool{"e1000": true, "virtio_net": true}
	has := func(name string) bool { return modules[strings.ReplaceAll(name, "-", "_")] }
	const base = "nodes 32\niprange 10.54.0.100 10.54.0.131\n"
	tests := []struct {
		name string
		text string
		opt  Options
		want []want
	}{
		{"known modules", base + "bootmodule e1000 virtio-net\n", Options{Module: has}, nil},
		{"unknown module", base + "bootmodule e1000\nbootmodule nosuchmodule_xyz e1000\n", Options{Module: has},
			[]want{{4, Error, "bootmodule nosuchmodule_xyz: no such module in the nodes' kernel (not in its modules.dep nor built in); building the boot image would fail"}}},
		{"no module tree", base + "bootmodule nosuchmodule_xyz\n", Options{}, nil},
		{"kernel exists", base + "kernelimage " + kernel + "\nclass c initrdimage " + kernel + "\n", Options{Stat: os.Stat}, nil},
		{"kernel missing", base + "kernelimage /nonexistent\n", Options{Stat: os.Stat},
			[]want{{3, Warning, "kernelimage /nonexistent: no such file or directory; nodes booting it would fail"}}},
		{"class initrd missing", base + "class c initrdimage /nonexistent/initrd\n", Options{Stat: os.Stat},
			[]want{{3, Warning, "initrdimage /nonexistent/initrd: no such file"}}},
		{"node kernel is a directory", base + "kernelimage 3 " + dir + "\n", Options{Stat: os.Stat},
			[]want{{3, Warning, "kernelimage " + dir + ": not a regular file"}}},
		{"none and command lines are not files", base + "kernelimage none\nkernelcommandline /nonexistent\n", Options{Stat: os.Stat}, nil},
		{"not looked for", base + "kernelimage /nonexistent\n", Options{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.conf", []byte(tt.text), tt.opt)
			checkDiags(t, c, err, tt.want)
		})
	}
}

// TestReadFile: only regular files, after symlinks, of at most
// MaxFileSize bytes; never a read without end or a block.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "config")
	if err := os.WriteFile(good, []byte(DefaultText), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if f, err := os.Create(big); err != nil {
		t.Fatal(err)
	} else {
		f.Truncate(MaxFileSize + 1) // sparse: nothing written
		f.Close()
	}
	full := filepath.Join(dir, "full")
	if err := os.WriteFile(full, make([]byte, MaxFileSize), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{good, link} {
		c, err := Load(p, Options{})
		if err != nil || c.NodeCount() != 64 {
			t.Errorf("Load(%s): got %v, want the default config", p, err)
		}
	}
	if data, err := ReadFile(full); err != nil || len(data) != MaxFileSize {
		t.Errorf("ReadFile of exactly MaxFileSize bytes: got %d bytes, %v", len(data), err)
	}
	for _, tt := range []struct{ path, want string }{
		{"/dev/zero", "/dev/zero: not a regular file (a character device)"},
		{fifo, fifo + ": not a regular file (a FIFO)"},
		{dir, dir + ": not a regular file (a directory)"},
		{big, big + ": 16777217 bytes, larger than the 16 MiB a config or fstab may have"},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := Load(tt.path, Options{})
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load(%s): got %v, want an error containing %q", tt.path, err, tt.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Load(%s) blocks", tt.path)
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v, want fs.ErrNotExist", err)
	}
	if _, err := Open("/dev/zero", Options{}); err == nil {
		t.Error("Open(/dev/zero): got no error")
	}
}
