package applets

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestPlural(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want string
	}{{0, "0 nodes"}, {1, "1 node"}, {3, "3 nodes"}} {
		if got := Plural(tt.n, "node"); got != tt.want {
			t.Errorf("Plural(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

// TestCommand: an applet linked in bin wins, then PATH, then beo itself.
func TestCommand(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "bpsh"), []byte("#!/bin/sh\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tt := range []struct {
		argv []string
		want string
	}{
		{[]string{"bpsh", "-a", "true"}, filepath.Join(bin, "bpsh")},
		{[]string{"sh", "-c", "true"}, "sh"},
		{[]string{"no-such-program-beo"}, "/self"},
	} {
		cmd := Command(ctx, "/self", bin, tt.argv, nil, IO{})
		if got := cmd.Args[0]; got != tt.want && cmd.Path != tt.want {
			t.Errorf("Command(%q): runs %q (%s), want %q", tt.argv, got, cmd.Path, tt.want)
		}
	}
	var e *Exit
	err := CommandExit(Command(ctx, "/self", bin, []string{"bpsh"}, nil, IO{}).Run())
	if !errors.As(err, &e) || e.Code != 7 {
		t.Errorf("CommandExit of an exit 7: %v", err)
	}
	if err := CommandExit(exec.Command("/no/such/beo").Run()); err == nil || errors.As(err, &e) {
		t.Errorf("CommandExit of a failed start: %v, want the error itself", err)
	}
}
