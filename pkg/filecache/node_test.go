package filecache

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/beo-cluster/beo/pkg/elfdeps"
)

// TestNodeRoot plays bpsh's file transfer for /bin/ls into an empty node
// root: hash each file of the closure, send what the node lacks, place
// the closure (files linked, links recreated). The second round sends nothing, and the
// result runs chrooted (when we may chroot).
func TestNodeRoot(t *testing.T) {
	files, err := elfdeps.Closure("/", "/bin/ls", elfdeps.Options{})
	if err != nil {
		t.Skipf("no closure for /bin/ls here: %v", err)
	}
	node := t.TempDir()
	c, err := Open(filepath.Join(node, "var", "cache", "beo"))
	if err != nil {
		t.Fatal(err)
	}
	var h Hasher
	round := func() (sent int64) {
		var refs []Ref
		for _, f := range files {
			hash, err := h.Hash(f.Real)
			if err != nil {
				t.Fatal(err)
			}
			if !c.Has(hash) {
				r, err := os.Open(f.Real)
				if err != nil {
					t.Fatal(err)
				}
				err = c.Put(hash, f.Size, r)
				r.Close()
				if err != nil {
					t.Fatal(err)
				}
				sent += f.Size
			}
			refs = append(refs, Ref{Path: filepath.Join(node, f.Real), Hash: hash, Mode: f.Mode})
			for _, l := range f.Links {
				refs = append(refs, Ref{Path: filepath.Join(node, l.Name), Target: l.Target})
			}
		}
		if err := c.Place(refs); err != nil {
			t.Fatal(err)
		}
		return sent
	}
	if sent := round(); sent == 0 {
		t.Fatal("first round sent nothing")
	}
	if sent := round(); sent != 0 {
		t.Errorf("second round sent %d bytes, want 0", sent)
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(node, f.Path)); err != nil {
			t.Errorf("%s missing on the node: %v", f.Path, err)
		}
	}

	cmd := exec.Command("/bin/ls", "/")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: node}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) || os.Geteuid() != 0 {
		t.Skipf("cannot chroot: %v", err)
	}
	if err != nil || !strings.Contains(string(out), "var") {
		t.Errorf("chrooted ls / = %q, %v", out, err)
	}
}
