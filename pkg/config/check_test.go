package config

import "testing"

// TestClusterSize: a file that describes no node would drop every node of
// a running cluster; it is an error, on the line that says so.
func TestClusterSize(t *testing.T) {
	const mac = "52:54:00:00:00:01"
	tests := []struct {
		name string
		text string
		want []want
	}{
		{"empty", "", []want{{1, Error, "no directives: the file is empty or only comments"}}},
		{"blank lines", "\n\n\r\n", []want{{1, Error, "no directives"}}},
		{"only comments", "# nodes 8\n\n  # iprange 10.54.0.100 10.54.0.107\n", []want{{1, Error, "no directives"}}},
		{"nodes without iprange", "# cluster\nnodes 8\n", []want{{2, Error, "no iprange line: no node has an address"}}},
		{"node lines without iprange", "pingtimeout 5\nnode " + mac + "\n", []want{{2, Error, "no iprange line"}}},
		{"nodes line preferred", "node 0 " + mac + "\nnodes 8\n", []want{{2, Error, "no iprange line"}}},
		{"neither", "# cluster\npingtimeout 5\n", []want{{1, Error, "no iprange line"}}},
		{"only unknown directives", "frobnicate\n", []want{{1, Warning, "unknown directive"}, {1, Error, "no iprange line"}}},
		{"nodes 0", "iprange 10.54.0.100 10.54.0.107\nnodes 0\n", []want{{2, Error, "nodes 0: the cluster would have no nodes"}}},
		{"last nodes line wins", "iprange 10.54.0.100 10.54.0.107\nnodes 4\nnodes 0\n",
			[]want{{3, Warning, "nodes repeated"}, {3, Error, "nodes 0: the cluster would have no nodes"}}},
		{"malformed iprange says it alone", "nodes 8\niprange 10.54.0.100\n", []want{{2, Error, "usage: iprange FROM TO"}}},
		{"only lines with bad characters", "\a\n", []want{{1, Error, "control character"}}},
		{"iprange alone", "iprange 10.54.0.100 10.54.0.107\n", nil},
		{"nodes and iprange", "nodes 2\niprange 10.54.0.100 10.54.0.107\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.conf", []byte(tt.text), Options{})
			checkDiags(t, c, err, tt.want)
			checkPosition(t, err, tt.want)
		})
	}
}
