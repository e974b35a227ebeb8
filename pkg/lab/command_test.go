package lab

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestCommand: a command runs inside the lab's namespace (it sees the
// bridge and its address, which the host does not have), and a failure's
// error carries the command's stderr.
func TestCommand(t *testing.T) {
	if err := Check(false); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := New(ctx, Options{Dir: t.TempDir(), Grace: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tests := []struct {
		argv      []string
		want, err string
	}{
		{[]string{"ip", "-o", "addr", "show", "dev", l.Bridge}, l.Addr.String(), ""},
		{[]string{"ip", "link", "show", "dev", "no-such-link"}, "", "no-such-link"},
		{nil, "", "empty command"},
	}
	for _, tt := range tests {
		out, err := l.Output(ctx, tt.argv...)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("Output(%q) error %v, want one with %q", tt.argv, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf("Output(%q): %v", tt.argv, err)
		case !strings.Contains(out, tt.want):
			t.Errorf("Output(%q) = %q, want %q in it", tt.argv, out, tt.want)
		}
	}
}
