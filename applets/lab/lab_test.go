package lab

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
		{[]string{"-masters", "5"}, "-masters 5: want 1 to 4"},
		{[]string{"-masters", "0"}, "-masters 0: want 1 to 4"},
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

func TestMasterOrder(t *testing.T) {
	if got := masterOrder(1); got != "" {
		t.Errorf("one master: %q, want no line", got)
	}
	if got, want := masterOrder(3), "masterorder - 10.99.0.1 10.99.0.2 10.99.0.3\n"; got != want {
		t.Errorf("three masters: %q, want %q", got, want)
	}
}

func TestLabFstab(t *testing.T) {
	dir := t.TempDir()
	var w bytes.Buffer
	if got, err := labFstab("none", dir, &w); got != "" || err != nil {
		t.Errorf("-fstab none: %q, %v", got, err)
	}
	file := filepath.Join(dir, "my-fstab")
	os.WriteFile(file, []byte("$MASTER:/srv /srv nfs ro\n"), 0o644)
	if got, err := labFstab(file, dir, &w); got != "$MASTER:/srv /srv nfs ro\n" || err != nil {
		t.Errorf("-fstab FILE: %q, %v", got, err)
	}
	if _, err := labFstab(filepath.Join(dir, "missing"), dir, &w); err == nil {
		t.Error("-fstab of a missing file: no error")
	}
	got, err := labFstab("default", dir, &w)
	if err != nil {
		t.Fatal(err)
	}
	if got != "" && !strings.Contains(got, " /home nfs4 rw,nonfatal") || got == "" && !strings.Contains(w.String(), "nodes mount nothing") {
		t.Errorf("-fstab default: %q, said %q", got, w.String())
	}
}
