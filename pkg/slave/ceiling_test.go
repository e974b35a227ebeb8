package slave

import (
	"testing"

	"github.com/beo-cluster/beo/pkg/wire"
	"golang.org/x/sys/unix"
)

// TestOwnCeiling: a user's limits may go below bpslave's own, never
// above (RLIMIT_RTPRIO 99 would give SCHED_FIFO to anyone).
func TestOwnCeiling(t *testing.T) {
	var rt, nofile unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_RTPRIO, &rt) != nil || unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile) != nil {
		t.Skip("no getrlimit")
	}
	huge := uint64(unix.RLIM_INFINITY)
	got := ownCeiling([]wire.Rlimit{
		{Resource: unix.RLIMIT_RTPRIO, Cur: huge, Max: huge},
		{Resource: unix.RLIMIT_NOFILE, Cur: 10, Max: 20},
	})
	if len(got) != 2 {
		t.Fatalf("got %+v", got)
	}
	if got[0].Max != rt.Max || got[0].Cur != rt.Max {
		t.Errorf("RTPRIO asked unlimited: got %d/%d, want bpslave's hard %d", got[0].Cur, got[0].Max, rt.Max)
	}
	if nofile.Max >= 20 && (got[1].Cur != 10 || got[1].Max != 20) {
		t.Errorf("NOFILE lowered to 10/20: got %d/%d", got[1].Cur, got[1].Max)
	}
}
