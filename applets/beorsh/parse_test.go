package beorsh

import "testing"

// TestParse: rsh's command line, the master's -1 included as a host.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		host, line string
		null       bool
	}{
		{[]string{"n1", "echo", "hi"}, "n1", "echo hi", false},
		{[]string{"-n", "-x", ".2", "orted", "--x"}, ".2", "orted --x", true},
		{[]string{"-1", "echo", "ok"}, "-1", "echo ok", false},
		{[]string{"-n", "-1", "true"}, "-1", "true", true},
		{[]string{"-l", "me", "me@3", "true"}, "3", "true", false},
	} {
		o, err := parse(tc.args)
		if err != nil || o.host != tc.host || o.line != tc.line || o.nullIn != tc.null {
			t.Errorf("parse(%q): got %+v %v", tc.args, o, err)
		}
	}
	for _, bad := range [][]string{{}, {"-q", "n1", "true"}, {"n1"}, {"-l"}} {
		if _, err := parse(bad); err == nil {
			t.Errorf("parse(%q): no error", bad)
		}
	}
}
