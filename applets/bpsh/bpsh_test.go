package bpsh

import "testing"

func TestOneNode(t *testing.T) {
	for _, tc := range []struct {
		spec string
		n    int
		ok   bool
	}{
		{"0", 0, true},
		{"7", 7, true},
		{"007", 7, true},
		{"-1", 0, false},
		{"master", 0, false},
		{"n3", 0, false},
		{".3", 0, false},
		{"1,2", 0, false},
		{"1-2", 0, false},
		{"allup", 0, false},
		{"", 0, false},
		{"1234567890", 0, false},
		{" 3", 0, false},
	} {
		n, ok := oneNode(tc.spec)
		if n != tc.n || ok != tc.ok {
			t.Errorf("oneNode(%q) = %d, %v; want %d, %v", tc.spec, n, ok, tc.n, tc.ok)
		}
	}
}
