package bpslave

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/applets"
)

func TestRunArgs(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nokeys")
	tests := []struct {
		name      string
		args      []string
		wantUsage bool
		wantErr   string
	}{
		{"no master", nil, true, "-m HOST:PORT is required"},
		{"extra argument", []string{"-m", "h:1", "extra"}, true, "unexpected arguments"},
		{"bad source", []string{"-m", "h:1", "-src", "nope"}, true, `-src "nope": not an IP address`},
		{"unknown flag", []string{"-x"}, true, "flag provided but not defined: -x"},
		{"bad stats address", []string{"-m", "h:1", "-stats", "nope"}, true, `-stats "nope": want IP:PORT`},
		{"stats too often", []string{"-m", "h:1", "-stats", "127.0.0.1:5545", "-stats-interval", "1ms"}, true, "-stats-interval must be at least 100ms"},
		{"no keys", []string{"-m", "h:1", "-keys", missing}, false, "no such file or directory"},
		{"a master without a port", []string{"-m", "h:1,g"}, true, `-m "g": want HOST:PORT, comma-separated`},
		{"a master twice", []string{"-m", "h:1,g:1,h:1"}, true, "-m: h:1 listed twice"},
		{"several masters", []string{"-m", "h:1,g:1", "-keys", missing}, false, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(context.Background(), tt.args, applets.IO{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard})
			var u *applets.Usage
			if got := errors.As(err, &u); got != tt.wantUsage {
				t.Errorf("got %T %v, want usage error %v", err, err, tt.wantUsage)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
