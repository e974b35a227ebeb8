package job

import (
	"bytes"
	"strings"
	"testing"
)

// TestGather: equal outputs are printed once under their nodes (folded,
// with the process count), in the order of their first rank; empty ones
// not at all; an output larger than the memory limit spills to a file
// and comes back whole; a missing last newline is added.
func TestGather(t *testing.T) {
	big := strings.Repeat("x", 100) + "\n"
	outs := []struct {
		node int
		text string
	}{{3, "same\n"}, {0, big}, {1, "same\n"}, {2, ""}, {-1, "same\n"}, {4, "no newline"}, {5, big}}
	var procs []*proc
	for i, o := range outs {
		g := &gathered{limit: 10}
		for _, chunk := range []string{o.text[:len(o.text)/2], o.text[len(o.text)/2:]} {
			g.Write([]byte(chunk))
		}
		procs = append(procs, &proc{rank: i, node: o.node, gout: g})
	}
	var b bytes.Buffer
	printGathered(&b, procs, func(p *proc) *gathered { return p.gout })
	line := strings.Repeat("-", 16)
	want := line + "\n-1,1,3 (3)\n" + line + "\nsame\n" +
		line + "\n0,5 (2)\n" + line + "\n" + big +
		line + "\n4 (1)\n" + line + "\nno newline\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
