package master

import (
	"context"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/pkg/wire"
)

// TestPutSourcesChecks: what putSources refuses before it reads anything
// or asks a node (the copy itself is tested in test/cluster).
func TestPutSourcesChecks(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"rel/x", "/a/../b", "/a/", "/a//b", "/a/./b"} {
		err := m.putSources(context.Background(), me(), nil, wire.File{Node: 0, Path: "/x", Sources: []string{"/ok", src}})
		if err == nil || err.Error() != src+": not an absolute, clean path" {
			t.Errorf("source %q: got %v, want it refused as not absolute and clean", src, err)
		}
	}
	gone := caller{pid: 1 << 30, cred: me().cred} // no such process: its view cannot be checked
	if err := m.putSources(context.Background(), gone, nil, wire.File{Sources: []string{"/x"}}); err == nil || err.Error() != wire.SourcesRefused {
		t.Errorf("a caller whose filesystem view is unknown: got %v, want %q", err, wire.SourcesRefused)
	}
	if err := m.putSources(context.Background(), me(), nil, wire.File{Node: 7, Sources: []string{"/x"}}); err == nil || !strings.Contains(err.Error(), "7") {
		t.Errorf("no such node: got %v, want an error naming node 7", err)
	}
}

func TestMayReadAs(t *testing.T) {
	if !mayReadAs(me()) {
		t.Error("this process: mayReadAs = false, want true")
	}
	if mayReadAs(caller{pid: 1 << 30, cred: me().cred}) {
		t.Error("a process that does not exist: mayReadAs = true, want false")
	}
	other := me()
	other.cred = wire.Cred{UID: other.cred.UID + 1, GID: other.cred.GID}
	if got, want := mayReadAs(other), me().cred.UID == 0; got != want {
		t.Errorf("another uid: mayReadAs = %v, want %v (root: %v)", got, want, want)
	}
}
