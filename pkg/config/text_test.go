package config

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestNotText(t *testing.T) {
	const base = "nodes 4\niprange 10.54.0.100 10.54.0.103\n" // lines 1-2
	tests := []struct {
		name string
		text string
		want []want
	}{
		{"NUL in a comment", base + "# a\x00b\nfrobnicate\n", []want{{3, Error, "not a text file: NUL byte at column 4"}}},
		{"NUL in a directive", base + "node 1\x00\n", []want{{3, Error, "NUL byte at column 7"}}},
		{"Latin-1 comment", base + "# J\xfcrgen's cluster\n", []want{{3, Error, "not a text file: invalid UTF-8 byte 0xfc at column 4"}}},
		{"truncated rune", "nodes 4\xc3", []want{{1, Error, "invalid UTF-8 byte 0xc3 at column 8"}}},
		{"first offending line", "nodes 4\n\xff\n\x00\n", []want{{2, Error, "invalid UTF-8 byte 0xff"}}},
		{"UTF-8 is text", base + "# Jürgen's cluster ✓\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.conf", []byte(tt.text), Options{})
			checkDiags(t, c, err, tt.want)
			checkPosition(t, err, tt.want)
		})
	}
}

// TestRandomBytes is the file: random bytes were 792 warnings,
// `nodes 0` and no error. Now they are one error, and nothing is read.
func TestRandomBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 200<<10)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	c, err := Parse("random.conf", data, Options{})
	var de *DiagError
	if !errors.As(err, &de) || len(c.Diags()) != 1 || !strings.Contains(err.Error(), "not a text file") {
		t.Fatalf("got error %v and %d diagnostics, want one: not a text file", err, len(c.Diags()))
	}
	if n := c.NodeCount(); n != 0 {
		t.Errorf("NodeCount: got %d, want 0", n)
	}
}

func TestBadChar(t *testing.T) {
	const base = "nodes 4\niprange 10.54.0.100 10.54.0.103\n" // lines 1-2
	tests := []struct {
		name string
		text string
		want []want
	}{
		{"escape sequence", base + "node 1 \x1b[31m52:54:00:00:00:01\n",
			[]want{{3, Error, "control character U+001B at column 8; line ignored"}}},
		{"bell in a comment", base + "# ring\a\n", []want{{3, Error, "control character U+0007 at column 7"}}},
		{"DEL", base + "nodename n%N\x7f\n", []want{{3, Error, "control character U+007F at column 13"}}},
		{"form feed", base + "\f\n", []want{{3, Error, "control character U+000C at column 1"}}},
		{"vertical tab", base + "pingtimeout\v30\n", []want{{3, Error, "control character U+000B at column 12"}}},
		{"old Mac line ends", "nodes 4\riprange 10.54.0.100 10.54.0.103\r", []want{{1, Error, "control character U+000D at column 8"}}},
		{"C1 control", base + "# \u0085\n", []want{{3, Error, "control character U+0085 at column 3"}}},
		{"no-break space", base + "pingtimeout\u00a030\n", []want{{3, Error, "non-printable character U+00A0 at column 12; line ignored"}}},
		{"byte-order mark", "\ufeff" + base, []want{{1, Error, "non-printable character U+FEFF at column 1"}}},
		{"zero-width space", base + "node 1\u200b\n", []want{{3, Error, "non-printable character U+200B at column 7"}}},
		{"one error per line", base + "\a\a\n\a\n", []want{{3, Error, "U+0007 at column 1"}, {4, Error, "U+0007 at column 1"}}},
		{"tab and CRLF are fine", "nodes\t4\r\niprange\t10.54.0.100 10.54.0.103 \t\r\n", nil},
		{"unknown directives stay warnings", base + "frobnicate 1\n", []want{{3, Warning, `unknown directive "frobnicate"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.conf", []byte(tt.text), Options{})
			checkDiags(t, c, err, tt.want)
			checkPosition(t, err, tt.want)
		})
	}
	// The line with a bad character is left out of the Config.
	c, _ := Parse("test.conf", []byte(base+"node 1 \x1b[31m52:54:00:00:00:01\nnode 2 52:54:00:00:00:02\n"), Options{})
	if _, ok := c.Node(1); ok {
		t.Errorf("node 1 read from a line with an escape sequence")
	}
	if _, ok := c.Node(2); !ok {
		t.Errorf("node 2, on the next line, not read")
	}
}

// checkPosition checks that err, when want has an error, starts with the
// file:line of its first error.
func checkPosition(t *testing.T, err error, ws []want) {
	t.Helper()
	for _, w := range ws {
		if w.sev != Error {
			continue
		}
		if prefix := "test.conf:" + strconv.Itoa(w.line) + ": "; err == nil || !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("error %v: want it to start with %q", err, prefix)
		}
		return
	}
}
