package job

import (
	"bytes"
	"sync"
	"testing"
)

// TestOutputLastLine: a process's last line without a newline is, under
// Prefix, a prefixed line of its own when the process ends, so that
// processes sharing a stream never share a line; under Line alone the
// bytes stay as they came.
func TestOutputLastLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"prefix", Options{Line: true, Prefix: true}, "  0: a\n  0: x\n -1: x\n  1: x\n"},
		{"line", Options{Line: true}, "a\nxxx"},
		{"raw", Options{}, "a\nxxx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			var mu sync.Mutex
			outs := []*output{newOutput(0, &b, &mu, tc.o, nil), newOutput(-1, &b, &mu, tc.o, nil), newOutput(1, &b, &mu, tc.o, nil)}
			outs[0].Write([]byte("a\nx"))
			for _, o := range outs[1:] {
				o.Write([]byte("x"))
			}
			for _, o := range outs {
				o.close()
			}
			if b.String() != tc.want {
				t.Errorf("got %q, want %q", b.String(), tc.want)
			}
		})
	}
}
