package slave

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
)

// A client on a node whose master will not have it fails at once, saying
// so, rather than waiting or being served from anywhere else.
func TestClientsWithoutMaster(t *testing.T) {
	m := newMaster(t, time.Second)
	m.refuse.Store("not today")
	sock := filepath.Join(t.TempDir(), "bpmaster.sock")
	startSlave(t, m, func(c *Config) { c.ClientSocket = sock })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var err error
	for { // until the socket is there and the slave has been refused once
		var cl *bproc.Client
		if cl, err = bproc.Dial(ctx, sock); err == nil {
			_, err = cl.Status(ctx)
			cl.Close()
			if strings.Contains(err.Error(), "not today") {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("no refusal naming why: last %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !errors.Is(err, bproc.ErrNoMaster) || !strings.Contains(err.Error(), "no connection to bpmaster") {
		t.Errorf("got %v, want %v saying the node has no connection", err, bproc.ErrNoMaster)
	}
}

func TestJobEnv(t *testing.T) {
	s := &slave{cfg: Config{ClientSocket: "/run/beowulf/bpmaster.sock"}}
	got := s.jobEnv([]string{"A=1", "BEO_SOCKET=/master/path", "B=2"})
	want := []string{"A=1", "B=2", "BEO_SOCKET=/run/beowulf/bpmaster.sock"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	s.cfg.ClientSocket = ""
	if got := s.jobEnv(nil); got == nil || len(got) != 0 {
		t.Errorf("no socket, no env: got %#v, want empty, not nil", got)
	}
	// The node's client commands come last on a PATH that lacks them.
	s.cfg.ClientBin = "/beo/bin"
	for in, want := range map[string]string{
		"PATH=/usr/bin:/bin":          "PATH=/usr/bin:/bin:/beo/bin",
		"PATH=/beo/bin:/usr/bin":      "PATH=/beo/bin:/usr/bin",
		"PATH=/usr/bin:/beo/bin:/bin": "PATH=/usr/bin:/beo/bin:/bin",
		"PATH=":                       "PATH=", // empty: left as the caller meant it
		"MYPATH=/x":                   "MYPATH=/x",
	} {
		if got := s.jobEnv([]string{in}); !slices.Equal(got, []string{want}) {
			t.Errorf("jobEnv(%q) = %q, want %q", in, got, want)
		}
	}
}
