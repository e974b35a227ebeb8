package beofdisk

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

func run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, applets.IO{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return out.String(), err
}

// The node half of -w and -s on an image file standing for /dev/vda.
func TestNodeHalf(t *testing.T) {
	img := filepath.Join(t.TempDir(), "vda")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, 256<<20)
	out, err := run(t, "disk vda\npart swap 32M\npart linux rest\n", "-apply", img)
	if err != nil || !strings.Contains(out, "GPT written: ") || !strings.Contains(out, "1 swap 32M, ") {
		t.Fatalf("-apply: %q, %v", out, err)
	}
	if _, err := run(t, "disk vda\npart swap 1G\n", "-apply", img); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("-apply of a layout that does not fit: %v", err)
	}
	if _, err := run(t, "disk vda\npart swap 1M\ndisk vdb\npart swap 1M\n", "-apply", img); err == nil {
		t.Errorf("-apply of two sections accepted")
	}
	if out, err := run(t, "", "-probe", img); err != nil || out != "none\n" {
		t.Errorf("-probe: %q, %v", out, err)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"-d", "-w"}, {"-probe"}, {"-mount", "a", "b"}, {"-w", "extra"}} {
		var u *applets.Usage
		if _, err := run(t, "", args...); !errors.As(err, &u) {
			t.Errorf("beofdisk %q: %v, want a usage error", args, err)
		}
	}
}
