package master

import (
	"os"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/acct"
	"github.com/beo-cluster/beo/pkg/wire"
)

// usageReadings are what the fake node's "usage" exec reports: two
// readings while it runs, then the final one.
func usageReadings() [3]wire.Usage {
	u := func(at, cpu time.Duration, mem int64) wire.Usage {
		return wire.Usage{At: at, CPU: cpu, User: cpu, Mem: mem, MemPeak: 100 << 20, OOMKills: -1, Tasks: 1, TasksPeak: 2,
			ReadBytes: -1, WriteBytes: -1, Tree: true}
	}
	return [3]wire.Usage{u(time.Second, 500*time.Millisecond, 10<<20), u(3*time.Second, 2500*time.Millisecond, 64<<20),
		u(4*time.Second, 3*time.Second, 0)}
}

// TestJobAccounting: a running job is listed with the identity the
// master knows and the latest usage its node reported, its CPU use
// between the last two readings; once it ends it is booked with its
// final usage and exit status, in memory and in the accounting log.
func TestJobAccounting(t *testing.T) {
	c, n, _ := startFake(t)
	cmd := c.Command(0, "/bin/true", "usage")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	u := usageReadings()
	var jobs []acct.Job
	deadline := time.Now().Add(wait)
	for {
		jobs = n.m.Jobs()
		if len(jobs) == 1 && jobs[0].Usage != nil && jobs[0].Usage.At == u[1].At {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs: %+v; want one with the second reading", jobs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	j := jobs[0]
	if j.Node != 0 || j.PID != 4242 || j.UID != uint32(os.Getuid()) || j.Client != os.Getpid() ||
		len(j.Argv) != 2 || j.Argv[1] != "usage" || j.Started.IsZero() || *j.Usage != u[1] || j.CPUPct != 100 {
		t.Errorf("running job: %+v; want node 0 pid 4242, this process's uid and pid, the second reading, 100%% CPU", j)
	}
	n.going <- struct{}{}
	if err := cmd.Wait(); err == nil {
		t.Error("the job's exit status 2 was lost")
	}
	if jobs := n.m.Jobs(); len(jobs) != 0 {
		t.Errorf("after the end: jobs %+v", jobs)
	}
	fin := n.m.Finished()
	if len(fin) != 1 || fin[0].ID != j.ID || fin[0].Status != 2 || fin[0].Usage == nil || *fin[0].Usage != u[2] ||
		fin[0].CPUPct != 75 || fin[0].Ended.Before(j.Started) {
		t.Errorf("finished: %+v; want job %d, status 2, the final usage, 75%% CPU over its life", fin, j.ID)
	}
	if tot := n.m.JobTotals(); len(tot) != 1 || tot[0] != (acct.Totals{Node: 0, Jobs: 1, Failed: 1, CPU: 3 * time.Second}) {
		t.Errorf("totals: %+v", tot)
	}
	// The log's line follows the client's Result.
	var recs []acct.Record
	deadline = time.Now().Add(wait)
	for len(recs) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		if f, err := os.Open(n.acct); err == nil {
			recs, _ = acct.ReadLog(f)
			f.Close()
		}
	}
	if len(recs) != 1 || recs[0].ID != j.ID || recs[0].Status != 2 || recs[0].Usage.CPU != 3*time.Second {
		t.Errorf("accounting log: %+v", recs)
	}
}
