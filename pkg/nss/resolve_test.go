package nss

import (
	"errors"
	"net/netip"
	"testing"
)

// TestResolverNode: every name a node has, the master's names, and what
// is no node — notably a loopback address outside the host's own (beo
// sim's node block), which must not run a job on the master.
func TestResolverNode(t *testing.T) {
	r := &Resolver{
		Count:    4,
		Master:   netip.MustParseAddr("127.0.0.1"),
		Addrs:    map[netip.Addr]int{netip.MustParseAddr("127.1.0.2"): 2},
		Lookup:   func(string) ([]netip.Addr, error) { return nil, errors.New("no such host") },
		Hostname: func() (string, error) { return "head.example", nil },
	}
	for _, tc := range []struct {
		name string
		want int
		ok   bool
	}{
		{"3", 3, true}, {".1", 1, true}, {"n2", 2, true}, {"n2.cluster", 2, true},
		{"127.1.0.2", 2, true},
		{"master", -1, true}, {"-1", -1, true}, {".-1", -1, true}, {"localhost", -1, true},
		{"head", -1, true}, {"head.example", -1, true},
		{"127.0.0.1", -1, true}, {"127.0.1.1", -1, true}, {"::1", -1, true},
		{"4", 0, false}, {"n9", 0, false}, {"bogus", 0, false},
		{"127.1.0.9", 0, false}, {"127.99.99.99", 0, false},
	} {
		got, err := r.Node(tc.name)
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("Node(%q): got %d, %v; want %d", tc.name, got, err, tc.want)
		}
		var nn *NotNodeError
		if !tc.ok && !errors.As(err, &nn) {
			t.Errorf("Node(%q): got %d, %v; want a NotNodeError", tc.name, got, err)
		}
	}
}
