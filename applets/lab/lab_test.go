package lab

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/beo-cluster/beo/applets"
)

func TestBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"-n", "0"}, "-n 0: want 1 to 64"},
		{[]string{"-n", "65"}, "-n 65: want 1 to 64"},
		{[]string{"-accel", "hvf"}, `-accel "hvf": want kvm or tcg`},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		err := Run(context.Background(), tt.args, applets.IO{In: &bytes.Buffer{}, Out: &out, Err: &errb})
		var u *applets.Usage
		if !errors.As(err, &u) {
			t.Errorf("Run(%q) = %v, want a usage error", tt.args, err)
			continue
		}
		if u.Msg != tt.msg {
			t.Errorf("Run(%q) message %q, want %q", tt.args, u.Msg, tt.msg)
		}
	}
}
