package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/lab"
)

// pxeAccounting proves job accounting (issue 14 part 2) on a real node,
// whose cgroups have the cpu, memory, pids and io controllers the
// simulation lacks: a shell burning CPU on node 2 shows in beostat -j
// with its CPU time, its cgroup's memory (not a sum of resident sets)
// and its tasks, and once it ends in beostat -J with its status.
func pxeAccounting(t *testing.T, ctx context.Context, c *lab.Cluster, exe string) {
	t.Run("job accounting: beostat -j and -J", func(t *testing.T) {
		mark := fmt.Sprintf("acct%d", time.Now().UnixNano()%1e6)
		script := `i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; exit 3`
		job := pxeStart(t, ctx, nil, exe, c.Socket, "bpsh", "2", "sh", "-c", script, mark)
		var running dashboard.JobsDoc
		err := pxePoll(ctx, time.Minute, func() error {
			doc, err := pxeJobs(ctx, c, exe, "-j")
			if err != nil {
				return err
			}
			for _, j := range doc.Running {
				if j.Node == 2 && strings.Contains(strings.Join(j.Argv, " "), mark) && j.Usage != nil && j.Usage.CPU > 0 {
					running = doc
					u := j.Usage
					switch {
					case u.Mem <= 0 || u.MemRSS:
						return fmt.Errorf("memory %d (resident sets: %v), want the cgroup's own", u.Mem, u.MemRSS)
					case u.Tasks < 1:
						return fmt.Errorf("tasks %d", u.Tasks)
					}
					return nil
				}
			}
			return fmt.Errorf("no running job %s on node 2 with usage yet", mark)
		})
		if err != nil {
			job.kill()
			t.Fatalf("%v\n%+v", err, running)
		}
		if _, err := pxeWaitJob(job); err != nil {
			t.Fatal(err)
		}
		err = pxePoll(ctx, 30*time.Second, func() error {
			doc, err := pxeJobs(ctx, c, exe, "-J")
			if err != nil {
				return err
			}
			for _, r := range doc.Finished {
				if r.Node == 2 && strings.Contains(strings.Join(r.Argv, " "), mark) {
					if r.Status != 3 || r.Usage == nil || r.Usage.CPU <= 0 || r.Usage.MemPeak <= 0 {
						return fmt.Errorf("finished %s: %+v", mark, r)
					}
					return nil
				}
			}
			return fmt.Errorf("no finished job %s", mark)
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// pxeJobs reads beostat -j or -J -json: the master's /api/jobs.
func pxeJobs(ctx context.Context, c *lab.Cluster, exe, flag string) (dashboard.JobsDoc, error) {
	var doc dashboard.JobsDoc
	out, err := c.Lab.Output(ctx, exe, "beostat", "-url", dashboard.DefaultURL, flag, "-json")
	if err != nil {
		return doc, err
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return doc, fmt.Errorf("beostat %s -json: %v\n%s", flag, err, out)
	}
	return doc, nil
}

// pxeWaitJob waits (bounded) for a background bpsh to end.
func pxeWaitJob(j *pxeJob) (int, error) {
	select {
	case err := <-j.done:
		if err == nil {
			return 0, nil
		}
		if ee, ok := err.(interface{ ExitCode() int }); ok {
			return ee.ExitCode(), nil
		}
		return 0, err
	case <-time.After(3 * time.Minute):
		j.kill()
		return 0, fmt.Errorf("%s: still running after 3 minutes", j.name)
	}
}
