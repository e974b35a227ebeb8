package bplib

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/beo-cluster/beo/applets"
)

func TestParse(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args  []string
		act   action
		paths []string
	}{
		{[]string{"-l"}, list, nil},
		{[]string{"-c"}, clearAll, nil},
		{[]string{"-a", "/lib/libm.so.6", "/lib/libc.so.6"}, add, []string{"/lib/libm.so.6", "/lib/libc.so.6"}},
		{[]string{"-d", "libfoo.so"}, del, []string{filepath.Join(wd, "libfoo.so")}},
	}
	for _, tt := range tests {
		act, paths, err := parse(tt.args, io.Discard)
		if err != nil || act != tt.act || !slices.Equal(paths, tt.paths) {
			t.Errorf("bplib %q: got %v %q %v, want %v %q", tt.args, act, paths, err, tt.act, tt.paths)
		}
	}
	for _, args := range [][]string{nil, {"-a"}, {"-d"}, {"-l", "x"}, {"-c", "x"}, {"-a", "-d", "x"}, {"-l", "-c"}, {"-z"}} {
		_, _, err := parse(args, io.Discard)
		var u *applets.Usage
		if !errors.As(err, &u) {
			t.Errorf("bplib %q: got %v, want a usage error", args, err)
		}
	}
}

func TestWriteList(t *testing.T) {
	var b bytes.Buffer
	if err := writeList(&b, []string{"/lib/a.so", "/lib/b.so"}); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "/lib/a.so\n/lib/b.so\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
