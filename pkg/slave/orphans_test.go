package slave

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// TestHeartbeatLossKillsJobs: when the master falls silent (no ping for
// three intervals) the slave ends the session and kills every job at
// once — one that ignores the hangup's SIGHUP, and its child, too —
// instead of leaving them to a hangup grace, or running on.
func TestHeartbeatLossKillsJobs(t *testing.T) {
	const interval = 200 * time.Millisecond
	m := newMaster(t, interval)
	startSlave(t, m)
	s := m.next(t)
	r := s.start(t, wire.Exec{Argv: []string{"sh", "-c", "trap '' HUP; sleep 301 & wait"}}, program(t, "/bin/sh"), execOpts{})
	if r.err != "" {
		t.Fatal(r.err)
	}
	var kid int
	deadline := time.Now().Add(wait)
	for kid == 0 && time.Now().Before(deadline) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", r.pid, r.pid))
		kid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(5 * time.Millisecond)
	}
	if kid == 0 {
		t.Fatal("the job's child never started")
	}
	silent := time.Now()
	s.pings.Store(false)
	for alive(r.pid) || alive(kid) {
		if time.Since(silent) > 3*interval+time.Second {
			t.Fatalf("job %d and child %d alive %v after the master fell silent; want dead within 3 ping intervals and a second", r.pid, kid, time.Since(silent))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("job gone %v after the last ping", time.Since(silent).Round(time.Millisecond))
}
