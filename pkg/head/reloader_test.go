package head

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/pkg/config"
)

const goodConfig = "nodes 4\niprange 10.0.0.10 10.0.0.13\n"

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func configOptions() config.Options { return config.Options{} }

// TestReload: a good file reaches the owner and every follower, a broken
// one or one the owner refuses reaches nobody and the running config
// stays; Adopt hands the owner's own edits to the followers only.
func TestReload(t *testing.T) {
	path := writeConfig(t, goodConfig)
	r, _, err := Load(path, configOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var owned, followed []int
	refuse := false
	r.Own(func(f *config.File) error {
		if refuse {
			return errors.New("no")
		}
		owned = append(owned, f.Config().NodeCount())
		return nil
	})
	r.Follow(func(c *config.Config) { followed = append(followed, c.NodeCount()) })
	var warned []int
	r.Before(func(c *config.Config) { warned = append(warned, c.NodeCount()) })

	os.WriteFile(path, []byte("nodes 2\niprange 10.0.0.10 10.0.0.11\n"), 0o644)
	if err := r.Reload(); err != nil || r.Config().NodeCount() != 2 {
		t.Fatalf("good reload: %v, %d nodes", err, r.Config().NodeCount())
	}
	running := r.Config()
	os.WriteFile(path, []byte("\x00\x01junk"), 0o644)
	if err := r.Reload(); err == nil || !strings.Contains(err.Error(), path+":1:") {
		t.Errorf("broken file: got %v, want an error at %s:1", err, path)
	}
	os.WriteFile(path, []byte(goodConfig), 0o644)
	refuse = true
	if err := r.Reload(); err == nil {
		t.Errorf("owner's refusal: got no error")
	}
	if r.Config() != running {
		t.Errorf("a refused reload replaced the running config")
	}
	cfg, err := config.Parse("x", []byte(goodConfig), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Adopt(cfg)
	if r.Config() != cfg {
		t.Errorf("Adopt did not make the config the running one")
	}
	if want := []int{2}; !slices.Equal(owned, want) {
		t.Errorf("owner got %v, want %v", owned, want)
	}
	if want := []int{2, 4}; !slices.Equal(followed, want) {
		t.Errorf("followers got %v, want %v", followed, want)
	}
	if want := []int{2, 4}; !slices.Equal(warned, want) {
		t.Errorf("Before saw %v, want %v (checked files only)", warned, want)
	}
}
