package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// want is one expected diagnostic: its line, severity, and a piece of its message.
type want struct {
	line int
	sev  Severity
	msg  string
}

func TestDiagnostics(t *testing.T) {
	master := []netip.Addr{netip.MustParseAddr("10.54.0.1")}
	const base = "nodes 32\niprange 10.54.0.100 10.54.0.131\n" // lines 1-2
	tests := []struct {
		name    string
		text    string
		masters []netip.Addr
		want    []want
	}{
		{"clean", base + "hostrange 10.54.10.1 10.54.10.9\nhost 00:a0:d1:e9:87:ca 10.54.10.1 sw\n", master, nil},
		{"hostrange overlaps hostrange",
			base + "hostrange 10.54.10.1 10.54.10.20\nhostrange 10.54.10.20 10.54.10.30\n", nil,
			[]want{{4, Error, "hostrange 10.54.10.20 10.54.10.30 overlaps the hostrange on line 3"}}},
		{"hostrange inside hostrange",
			base + "hostrange 10.54.10.1 10.54.10.20\nhostrange 10.54.10.5 10.54.10.6\n", nil,
			[]want{{4, Error, "overlaps the hostrange on line 3"}}},
		{"hostrange overlaps iprange",
			base + "hostrange 10.54.0.130 10.54.0.140\n", nil,
			[]want{{3, Error, "overlaps the iprange on line 2"}}},
		{"iprange contains master",
			"iprange 10.54.0.1 10.54.0.31\n", master,
			[]want{{1, Error, "iprange 10.54.0.1 10.54.0.31 contains the master's address 10.54.0.1"}}},
		{"hostrange contains master",
			base + "hostrange 10.54.0.1 10.54.0.10\n", master,
			[]want{{3, Error, "hostrange 10.54.0.1 10.54.0.10 contains the master's address 10.54.0.1"}}},
		{"4in6 master", "iprange 10.54.0.1 10.54.0.31\n", []netip.Addr{netip.MustParseAddr("::ffff:10.54.0.1")},
			[]want{{1, Error, "contains the master's address 10.54.0.1"}}},
		{"host outside every hostrange",
			base + "hostrange 10.54.10.1 10.54.10.9\nhost 00:a0:d1:e9:87:ca 10.54.0.100 sw\n", nil,
			[]want{{4, Error, "address 10.54.0.100 is outside every hostrange"}}},
		{"host without hostrange", base + "host 00:a0:d1:e9:87:ca 10.54.10.1\n", nil,
			[]want{{3, Error, "outside every hostrange"}}},
		{"host address given twice",
			base + "hostrange 10.54.10.1 10.54.10.9\nhost 00:a0:d1:e9:87:ca 10.54.10.1\nhost 00:a0:d1:e9:87:cb 10.54.10.1\n", nil,
			[]want{{5, Error, "address 10.54.10.1 already given on line 4"}}},
		{"host at the master's address", "hostrange 10.54.0.1 10.54.0.9\nhost 00:a0:d1:e9:87:ca 10.54.0.1 sw\n", master,
			[]want{{1, Error, "contains the master's address"}, {2, Error, "address 10.54.0.1 is the master's"}}},
		{"hostrange exhausted",
			base + "hostrange 10.54.10.1 10.54.10.2\nhost 00:a0:d1:e9:87:c1 a\nhost 00:a0:d1:e9:87:c2 b\nhost 00:a0:d1:e9:87:c3 c\n", nil,
			[]want{{6, Error, "no free address left in the hostranges"}}},
		{"duplicate MAC node node",
			base + "node 00:a0:d1:e5:c4:6e\nnode 00:A0:D1:E5:C4:6E\n", nil,
			[]want{{4, Error, "MAC 00:a0:d1:e5:c4:6e already listed on line 3 (node)"}}},
		{"duplicate MAC in one line", base + "node 00:a0:d1:e5:c4:6e 00-a0-d1-e5-c4-6e\n", nil,
			[]want{{3, Error, "already listed on line 3 (node)"}}},
		{"duplicate MAC node ignore", base + "node 1 00:a0:d1:e5:c4:6e\nignore 00:a0:d1:e5:c4:6e\n", nil,
			[]want{{4, Error, "already listed on line 3 (node)"}}},
		{"duplicate MAC ignore host",
			base + "hostrange 10.54.10.1 10.54.10.9\nignore 00:a0:d1:e5:c4:6e\nhost 00:a0:d1:e5:c4:6e sw\n", nil,
			[]want{{5, Error, "already listed on line 4 (ignore)"}}},
		{"duplicate MAC host node",
			base + "hostrange 10.54.10.1 10.54.10.9\nhost 00:a0:d1:e5:c4:6e sw\nnode 00:a0:d1:e5:c4:6e\n", nil,
			[]want{{5, Error, "already listed on line 4 (host)"}}},
		{"node number not below nodes", "nodes 32\niprange 10.54.0.100 10.54.0.199\nnode 32 00:a0:d1:e5:c4:6e\n", nil,
			[]want{{3, Error, "node 32: number not below nodes 32 (line 1)"}}},
		{"node beyond iprange", "iprange 10.54.0.100 10.54.0.103\nnode 4 00:a0:d1:e5:c4:6e\n", nil,
			[]want{{2, Error, "node 4: address beyond the end 10.54.0.103 of the iprange on line 1"}}},
		{"node beyond both", "nodes 2\niprange 10.54.0.100 10.54.0.101\nnode 5\n", nil,
			[]want{{3, Error, "not below nodes 2"}, {3, Error, "beyond the end"}}},
		{"nodes exceeds iprange", "nodes 8\niprange 10.54.0.100 10.54.0.103\n", nil,
			[]want{{1, Warning, "nodes 8 exceeds the 4 addresses of the iprange on line 2"}}},
		{"duplicate node number", base + "node 3 00:a0:d1:e5:c4:6e\nnode 3 00:a0:d1:e5:c4:6f\n", nil,
			[]want{{4, Error, "node 3 already configured on line 3"}}},
		{"unnumbered collides", base + "node 1 00:a0:d1:e5:c4:01\nnode 0 00:a0:d1:e5:c4:00\nnode 00:a0:d1:e5:c4:02\n", nil,
			[]want{{5, Error, "node 1 already configured on line 3"}}},
		{"malformed MAC in node", base + "node 15 00:A0:D1:E5:C4\n", nil,
			[]want{{3, Error, `node: malformed MAC "00:A0:D1:E5:C4"`}}},
		{"long MAC", base + "node 15 00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01\n", nil,
			[]want{{3, Error, "not a 6-byte Ethernet address"}}},
		{"malformed MAC in ignore", base + "ignore 00:a0:d1:e5:c4:6e zz:zz\n", nil,
			[]want{{3, Error, `ignore: malformed MAC "zz:zz"`}}},
		{"malformed MAC in host", base + "host 00:a0 sw\n", nil,
			[]want{{3, Error, `host: malformed MAC "00:a0"`}}},
		{"malformed IP in iprange", "iprange 10.54.0.300 10.54.0.131\n", nil,
			[]want{{1, Error, `iprange: malformed IP address "10.54.0.300"`}}},
		{"IPv6 iprange", "iprange fd00::1 fd00::9\n", nil,
			[]want{{1, Error, `iprange: "fd00::1" is not an IPv4 address`}}},
		{"reversed range", "hostrange 10.54.10.9 10.54.10.1\n", nil,
			[]want{{1, Error, "hostrange: 10.54.10.9 comes after 10.54.10.1"}}},
		{"malformed IP in host", base + "hostrange 10.54.10.1 10.54.10.9\nhost 00:a0:d1:e9:87:ca 10.54.10.256 sw\n", nil,
			[]want{{4, Error, `host: malformed IP address "10.54.10.256"`}}},
		{"bad host name", base + "hostrange 10.54.10.1 10.54.10.9\nhost 00:a0:d1:e9:87:ca sw/1\n", nil,
			[]want{{4, Error, `host: bad host name "sw/1"`}}},
		{"malformed port", "server bproc 70000\nserver beostats x\n", nil,
			[]want{{1, Error, "server bproc: bad port: number 70000 out of range 1-65535"},
				{2, Error, `server beostats: bad port: malformed number "x"`}}},
		{"malformed number", "nodes -3\npingtimeout 0\nnode 99999999999999999999\n", nil,
			[]want{{1, Error, `nodes: malformed number "-3"`}, {2, Error, "pingtimeout: number 0 out of range"},
				{3, Error, "node: number 99999999999999999999 out of range"}}},
		{"missing arguments",
			"nodes\niprange 10.54.0.100\nhostrange\nnode\nignore\nhost\nkernelimage\ninitrdimage\nkernelcommandline\n" +
				"class\nclass x\nnodename\ninterface\nserver bproc\npingtimeout\nlibraries\nbootmodule\nnodeassign\n", nil,
			[]want{{1, Error, "missing arguments; usage: nodes N"}, {2, Error, "usage: iprange FROM TO"},
				{3, Error, "usage: hostrange FROM TO"}, {4, Error, "usage: node [N]"}, {5, Error, "usage: ignore MAC..."},
				{6, Error, "usage: host MAC"}, {7, Error, "usage: kernelimage [NODES] PATH|none"},
				{8, Error, "usage: initrdimage"}, {9, Error, "usage: kernelcommandline [NODES] ARGS...|none"},
				{10, Error, "usage: class NAME"}, {11, Error, "usage: class NAME"}, {12, Error, "usage: nodename"},
				{13, Error, "usage: interface NAME"}, {14, Error, "usage: server NAME PORT"},
				{15, Error, "usage: pingtimeout"}, {16, Error, "usage: libraries"}, {17, Error, "usage: bootmodule"},
				{18, Error, "usage: nodeassign"}}},
		{"missing values",
			"kernelimage 15\ninitrdimage 3-4\nkernelcommandline 15\nclass x kernelimage\nnode pxe+local pxe\nnode 1 pxe\n", nil,
			[]want{{1, Error, "kernelimage: missing value after node spec 15; usage: kernelimage [NODES] PATH|none"},
				{2, Error, "initrdimage: missing value after node spec 3-4"},
				{3, Error, "kernelcommandline: missing value after node spec 15; usage: kernelcommandline [NODES] ARGS...|none"}, {4, Error, "class x kernelimage: missing value"},
				{5, Error, "a line without a node number needs a MAC"},
				{6, Error, "boot-sequence pxe needs a boot-stage"}}},
		{"kernel command line too long", base + "kernelcommandline " + strings.Repeat("x", MaxCmdline) + "\nclass big kernelcommandline " + strings.Repeat("y ", MaxCmdline/2+2) + "\n", nil,
			[]want{{4, Error, "class big kernelcommandline: 1537 bytes; at most 1535: a Linux kernel keeps 2047 bytes"}}},
		{"too many arguments", "nodes 1 2\nkernelimage 1 /a /b\nnodename n%N 1 g x\ninterface eth0 eth1\n", nil,
			[]want{{1, Error, "too many arguments; usage: nodes N"}, {2, Error, "kernelimage: too many arguments"},
				{3, Error, "too many arguments; usage: nodename"}, {4, Error, "too many arguments; usage: interface"}}},
		{"unknown class", base + "class scyld kernelimage /boot/vmlinuz\nnode 4 sycld 00:a0:d1:e5:c4:6e\n", nil,
			[]want{{4, Error, `node: unknown class "sycld"`}}},
		{"class defined after use", base + "node 4 late 00:a0:d1:e5:c4:6e\nclass late kernelimage none\n", nil, nil},
		{"bad class name", "class 9x kernelimage none\nclass pxe kernelimage none\nclass a:b kernelimage none\n", nil,
			[]want{{1, Error, `bad class name "9x"`}, {2, Error, `"pxe" is a reserved word`}, {3, Error, `bad class name "a:b"`}}},
		{"unknown class attribute", "class x bootmodule e1000\n", nil,
			[]want{{1, Warning, `class x: unknown attribute "bootmodule" ignored`}}},
		{"unknown directive", "nodes 4\nfrobnicate 1 2\nNodes 5\n", nil,
			[]want{{2, Warning, `unknown directive "frobnicate" ignored`}, {3, Warning, `unknown directive "Nodes"`}}},
		{"bad boot-sequence after class", base + "class c kernelimage none\nnode 4 c pxe+disk pxe 00:a0:d1:e5:c4:6e\n", nil,
			[]want{{4, Error, `bad boot-sequence "pxe+disk" (want pxe, local or pxe+local)`}}},
		{"bad boot-sequence", base + "node 4 pxe+disk pxe 00:a0:d1:e5:c4:6e\n", nil,
			[]want{{3, Error, `"pxe+disk" is neither a defined class nor a boot-sequence`}}},
		{"bad boot-stage", base + "node 4 pxe+local pxe+local 00:a0:d1:e5:c4:6e\nnode 5 local disk 00:a0:d1:e5:c4:6f\n", nil,
			[]want{{3, Error, `bad boot-stage "pxe+local" (want pxe or local)`}, {4, Error, `bad boot-stage "disk"`}}},
		{"stage missing before MAC", base + "node 4 pxe+local 00:a0:d1:e5:c4:6e\n", nil,
			[]want{{3, Error, "boot-sequence pxe+local needs a boot-stage (pxe or local)"}}},
		{"stage outside sequence", base + "node 4 pxe local 00:a0:d1:e5:c4:6e\n", nil,
			[]want{{3, Warning, "boot-stage local is not a step of boot-sequence pxe"}}},
		{"bad node spec", "kernelimage 5-2 /boot/k\nkernelcommandline 3,,4 quiet\ninitrdimage n5 /boot/i\nkernelcommandline n5 quiet\n", nil,
			[]want{{1, Error, `bad node spec "5-2": range 5-2 ends before it starts`}, {2, Error, `bad node spec "3,,4"`},
				{3, Error, `initrdimage: bad node spec "n5"`}}},
		{"relative path", "kernelimage boot/k\nlibraries lib64\n", nil,
			[]want{{1, Warning, `path "boot/k" is not absolute`}, {2, Warning, `path "lib64" is not absolute`}}},
		{"repeated settings", "nodes 4\nnodes 5\nkernelimage /a\nkernelimage /b\npingtimeout 10\npingtimeout 20\n", nil,
			[]want{{2, Warning, "nodes repeated; overrides line 1"}, {4, Warning, "default kernelimage repeated; overrides line 3"},
				{6, Warning, "pingtimeout repeated; overrides line 5"}}},
		{"nodename", "nodename n%N 0.0.1\nnodename n%N x y\nnodename node\nnodename n%N/x\nnodename n%N bad/group\n", nil,
			[]want{{1, Error, `bad offset "0.0.1"`}, {2, Error, `bad offset "x"`}, {3, Error, `pattern "node" must be a host name containing %N`},
				{4, Error, "must be a host name"}, {5, Error, `bad group name "bad/group"`}}},
		{"server names", "server tcp 932\nserver nfs 2049\n", nil,
			[]want{{1, Warning, "server tcp is deprecated; use server beofs2"}, {2, Warning, `unknown server "nfs" ignored`}}},
		{"interface", "interface eth1\ninterface eth1\ninterface averyveryverylongname\n", nil,
			[]want{{2, Warning, "interface eth1 listed twice"}, {3, Error, "bad interface name"}}},
		{"nodeassign", "nodeassign sometimes\n", nil,
			[]want{{1, Error, `nodeassign: bad mode "sometimes" (want append, insert or off)`}}},
		{"ipforward", "ipforward maybe\nipforward yes no\nipforward\nipforward off\n", nil,
			[]want{{1, Error, `ipforward: bad value "maybe" (want yes or no)`}, {2, Error, "too many arguments; usage: ipforward [yes|no]"},
				{4, Warning, "ipforward repeated; overrides line 3"}}},
		{"mkfs and fsck", "mkfs sometimes\nmkfs never always\nfsck quick\nfsck\nmkfs if_error\nmkfs always\nfsck full\n", nil,
			[]want{{1, Error, `mkfs: bad policy "sometimes" (want never, if_error or always)`}, {2, Error, "too many arguments; usage: mkfs never|if_error|always"},
				{3, Error, `fsck: bad policy "quick" (want never, safe or full)`}, {4, Error, "missing arguments; usage: fsck never|safe|full"},
				{6, Warning, "mkfs repeated; overrides line 5"}}},
		{"masterorder", base + "masterorder 0-19 10.54.1.1 10.54.1.2\nmasterorder 10-40 10.54.1.2\nmasterorder - 10.54.1.1 10.54.1.1\n" +
			"masterorder x 10.54.1.1\nmasterorder 20-31 master\nmasterorder 3\nmasterorder 41 10.54.0.130\n", []netip.Addr{netip.MustParseAddr("10.54.1.1")},
			[]want{{4, Warning, "masterorder: node 10 already has its masters from line 3; that line wins for it"},
				{5, Error, "masterorder: master 10.54.1.1 listed twice"},
				{6, Error, `masterorder: bad node spec "x"`}, {7, Error, `masterorder: master "master"`},
				{8, Error, "missing arguments; usage: masterorder NODES|- MASTER_IP"},
				{9, Error, "masterorder: master 10.54.0.130 lies in the range 10.54.0.100 10.54.0.131 of line 2"},
				{9, Warning, "masterorder 41: the cluster has nodes 0-31; the line applies to no node"}}},
		{"masterorder without this master", base + "masterorder - 10.54.1.1 10.54.1.2\n", []netip.Addr{netip.MustParseAddr("10.54.1.3")},
			[]want{{3, Warning, "masterorder: no line names this master (10.54.1.3); it serves none of the nodes they cover"}}},
		{"comments and CRLF", "# comment\r\n\r\n  nodes 4 # four\r\niprange 10.54.0.100 10.54.0.103#x\r\n", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.conf", []byte(withRange(tt.text)), Options{Masters: tt.masters})
			checkDiags(t, c, err, tt.want)
		})
	}
}

// withRange appends an iprange line to a text that has none, after its
// last line so that line numbers stay: a file without one is an error of
// its own (TestClusterSize), beside the point of most tests.
func withRange(text string) string {
	if strings.Contains(text, "iprange") {
		return text
	}
	return text + "iprange 10.54.200.100 10.54.200.199\n"
}

// checkDiags compares c's diagnostics with want and checks that err
// carries exactly the errors.
func checkDiags(t *testing.T, c *Config, err error, want []want) {
	t.Helper()
	got := c.Diags()
	if len(got) != len(want) {
		t.Errorf("got %d diagnostics, want %d:\n%s", len(got), len(want), diagList(got))
	}
	nerr := 0
	for i, d := range got {
		if d.Severity == Error {
			nerr++
		}
		if i >= len(want) {
			continue
		}
		w := want[i]
		if d.Line != w.line || d.Severity != w.sev || !strings.Contains(d.Msg, w.msg) {
			t.Errorf("diagnostic %d: got %s %v, want line %d %s containing %q", i, d.Severity, d, w.line, w.sev, w.msg)
		}
	}
	var de *DiagError
	switch {
	case nerr == 0 && err != nil:
		t.Errorf("got error %v with no error diagnostics", err)
	case nerr > 0 && (!errors.As(err, &de) || len(de.Diags) != nerr):
		t.Errorf("got error %v, want a *DiagError with %d diagnostics", err, nerr)
	}
}

func diagList(ds []Diag) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString("\t" + d.Severity.String() + " " + d.String() + "\n")
	}
	return b.String()
}

func TestDiagFormat(t *testing.T) {
	_, err := Parse("/etc/beowulf/config", []byte("nodes x\n\nnodes y\niprange 10.54.0.100 10.54.0.131\n"), Options{})
	if got, want := err.Error(), `/etc/beowulf/config:1: nodes: malformed number "x" (and 1 more errors)`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var d Diag
	if !errors.As(err, &d) || d.Line != 1 {
		t.Errorf("errors.As(Diag): got %v, want the line 1 diagnostic", d)
	}
	_, err = Parse("c", []byte("iprange 10.54.0.100 10.54.0.131\nnodes 1\nnodes x"), Options{})
	if got, want := err.Error(), `c:3: nodes: malformed number "x"`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
