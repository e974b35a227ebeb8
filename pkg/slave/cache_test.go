package slave

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/pkg/filecache"
)

// TestPlacer: the slave's part of placing a closure — paths under the
// root ("/.." cannot leave it), the master's mode without set-id bits,
// 0755 when it sent none. The rest is filecache.Cache.Place's.
func TestPlacer(t *testing.T) {
	c, err := filecache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const content = "program"
	h := filecache.Sum([]byte(content))
	if err := c.Put(h, int64(len(content)), strings.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	pl := &placer{root: root, cache: c}
	files := []fileRef{
		{Path: "/../../escape", Hash: h, Mode: 0o4755}, // stays inside root, no setuid
		{Path: "/bin/nomode", Hash: h},
		{Path: "/bin/alias", Target: "../escape"},
	}
	if err := pl.place(files); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		mode os.FileMode
	}{{"escape", 0o755}, {"bin/nomode", 0o755}, {"bin/alias", 0o755}} {
		fi, err := os.Stat(filepath.Join(root, tt.path))
		if err != nil || fi.Mode() != tt.mode {
			t.Errorf("%s: got %v, %v; want %v", tt.path, fi, err, tt.mode)
		}
	}
}

func TestCheckRef(t *testing.T) {
	h := filecache.Sum([]byte("x"))
	for _, tt := range []struct{ path, hash, target, want string }{
		{"/bin/x", h, "", ""},
		{"/bin/l", "", "x", ""},
		{"bin/x", h, "", "not an absolute path"},
		{"/bin/x", "../../etc/passwd", "", "not a SHA-256"},
	} {
		err := checkRef(tt.path, tt.hash, tt.target)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("checkRef(%q, %q, %q) = %v, want %q", tt.path, tt.hash, tt.target, err, tt.want)
		}
	}
}
