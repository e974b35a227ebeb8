package nodespec

import (
	"slices"
	"testing"
)

// fuzzStates are the names a fuzzed cluster's nodes take.
func fuzzStates() []string {
	return []string{"down", "boot", "up", "error", "unavailable", "reboot", "halt", "pwroff", "alive", "[up]"}
}

// fuzzCluster builds a cluster of at most 300 nodes whose states come from
// the bytes of states (cycled); list makes it a KnownStates cluster.
func fuzzCluster(count uint16, states []byte, list bool) Cluster {
	names := fuzzStates()
	f := make(fake, int(count)%300)
	for i := range f {
		f[i] = "down"
		if len(states) > 0 {
			f[i] = names[int(states[i%len(states)])%len(names)]
		}
	}
	if list {
		return listed{f}
	}
	return f
}

// FuzzParse checks that Parse never panics and returns only real nodes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"5", "1,3", "1-3", "3-1", "4-", "-1", "master", ".5", "n5", ".-1", ".1-.3",
		"all", "allup", "allnotdown", "allerror", "allnotup", "allupp", "1,,2,", " 7 ",
		"0-99999999999999999999", "n", "-", "allnot", "all,all,master,1-2",
	} {
		f.Add(s, uint16(8), []byte{2, 2, 0, 1, 3, 4, 9, 8}, false)
	}
	f.Add("allup", uint16(0), []byte{}, true)
	f.Fuzz(func(t *testing.T, spec string, count uint16, states []byte, list bool) {
		c := fuzzCluster(count, states, list)
		got, err := Parse(spec, c)
		if err != nil {
			if got != nil {
				t.Fatalf("Parse(%q) = %v with error %v", spec, got, err)
			}
			return
		}
		for _, n := range got {
			if n != Master && (n < 0 || n >= c.Count()) {
				t.Fatalf("Parse(%q) with %d nodes returned node %d", spec, c.Count(), n)
			}
		}
		again, err := Parse(spec, c)
		if err != nil || !slices.Equal(got, again) {
			t.Fatalf("Parse(%q) not deterministic: %v then %v, %v", spec, got, again, err)
		}
	})
}

// FuzzFold checks that Parse reads back what Fold writes, as a set.
func FuzzFold(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 8})
	f.Add([]byte{0, 1, 1, 9, 3})
	f.Add([]byte{255, 254, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		// 64 numbers say all there is to say about sorting, duplicates and
		// runs; the cap keeps the fuzzer's minimizer from spending a minute
		// on every long input.
		b = b[:min(len(b), 64)]
		nodes := make([]int, len(b))
		for i, x := range b {
			nodes[i] = int(x) - 1 // -1 (master) … 254
		}
		c := make(fake, 255)
		folded := Fold(nodes)
		if len(nodes) == 0 {
			if folded != "" {
				t.Fatalf("Fold(nil) = %q", folded)
			}
			return
		}
		got, err := Parse(folded, c)
		if err != nil {
			t.Fatalf("Parse(Fold(%v) = %q): %v", nodes, folded, err)
		}
		want := slices.Clone(nodes)
		slices.Sort(want)
		want = slices.Compact(want)
		if !slices.Equal(got, want) {
			t.Fatalf("Parse(Fold(%v) = %q) = %v, want %v", nodes, folded, got, want)
		}
	})
}
