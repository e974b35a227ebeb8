package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/acct"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/sim"
	"github.com/beo-cluster/beo/test/testio"
)

// burnAwk holds a 64 MiB string, says ready, and burns CPU for 2–3 s.
const burnAwk = `BEGIN { s = "x"; for (i = 0; i < 26; i++) s = s s; print "ready"; fflush(); t = systime(); while (systime() - t < 3) n++; exit length(s) != 67108864 }`

// beostat runs beostat against c's dashboard.
func beostat(ctx context.Context, t *testing.T, c *sim.Cluster, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(ctx, beoBin, append([]string{"beostat"}, args...)...)
	cmd.Env = append(os.Environ(), dashboard.URLEnv+"="+c.StatsURL)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	code := 0
	if err := cmd.Run(); err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return result{o.String(), e.String(), code}
}

// jobsDoc is `beostat -j -J -json`.
func jobsDoc(ctx context.Context, t *testing.T, c *sim.Cluster) dashboard.JobsDoc {
	t.Helper()
	r := beostat(ctx, t, c, "-j", "-J", "-json")
	var doc dashboard.JobsDoc
	if r.code != 0 || json.Unmarshal([]byte(r.out), &doc) != nil {
		t.Fatalf("beostat -j -J -json: %+v", r)
	}
	return doc
}

// TestJobAccounting: a job that burns CPU and holds memory shows in
// beostat -j (and /metrics) while it runs, with its identity and
// plausible numbers from its node's cgroup, for root and for another
// user (nobody, two processes at once: the whole tree is counted); once
// it ends it is gone from -j and listed by -J and in the accounting log
// with its exit status and totals. Without cgroups (a simulation that
// may not make them) only the totals are checked.
func TestJobAccounting(t *testing.T) {
	c := startWith(t, sim.Options{Nodes: 2, Stats: true, StatsInterval: 200 * time.Millisecond}, 2)
	cgroups := c.Cgroup(0) != ""
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type job struct {
		name  string
		node  int
		cred  *syscall.Credential
		argv  []string
		procs int    // awk processes
		uid   uint32 // the job's
		cmd   *exec.Cmd
		out   *testio.Buffer
	}
	jobs := []*job{{name: "root", node: 0, argv: []string{"awk", burnAwk}, procs: 1, uid: uint32(os.Getuid())}}
	if os.Getuid() == 0 {
		for d := c.Dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) { // nobody reaches the socket and beo
			os.Chmod(d, 0o755)
		}
		os.Chmod(filepath.Dir(beoBin), 0o755)
		jobs = append(jobs, &job{name: "nobody", node: 1, cred: &syscall.Credential{Uid: 65534, Gid: 65534},
			argv: []string{"sh", "-c", `awk "$0" & awk "$0"; wait`, burnAwk}, procs: 2, uid: 65534})
	} else {
		t.Log("not root: no job as another user")
	}
	for _, j := range jobs {
		j.cmd = exec.CommandContext(ctx, "bpsh", append([]string{fmt.Sprint(j.node)}, j.argv...)...)
		j.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: j.cred}
		j.cmd.Dir = "/"
		j.cmd.Env = append(os.Environ(), bproc.SocketEnv+"="+c.Socket)
		j.out = &testio.Buffer{}
		j.cmd.Stdout, j.cmd.Stderr = j.out, j.out
		if err := j.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { j.cmd.Process.Kill() })
	}
	for _, j := range jobs {
		waitFor(t, j.name+"'s job ready", 20*time.Second, func() bool { return strings.Count(j.out.String(), "ready") >= j.procs })
	}

	running := map[string]acct.Job{}
	if cgroups {
		// Its node reports the job's usage every 200 ms (the
		// simulation's stats interval): wait for numbers that show the
		// memory every awk holds.
		waitFor(t, "every job's usage in beostat -j", 10*time.Second, func() bool {
			doc := jobsDoc(ctx, t, c)
			for _, j := range jobs {
				for _, rj := range doc.Running {
					if rj.Node == j.node && rj.Usage != nil && rj.Usage.Mem >= int64(j.procs)*60<<20 && rj.Usage.Tasks >= int64(j.procs) {
						running[j.name] = rj
					}
				}
			}
			return len(running) == len(jobs)
		})
		for _, j := range jobs {
			rj := running[j.name]
			u := rj.Usage
			t.Logf("%s: beostat -j: %+v usage %+v", j.name, rj, *u)
			if rj.UID != j.uid || rj.Argv[0] != j.argv[0] || rj.PID <= 0 || rj.Ghost <= 0 || rj.Client != j.cmd.Process.Pid ||
				time.Since(rj.Started) > time.Minute || !u.Tree {
				t.Errorf("%s: job %+v: want uid %d, %s, its pid, ghost and bpsh %d", j.name, rj, j.uid, j.argv[0], j.cmd.Process.Pid)
			}
			if u.CPU <= 0 || u.MemPeak < u.Mem || u.At <= 0 || u.At > time.Minute || rj.CPUPct < 0 || rj.CPUPct > 100*float64(2*j.procs) {
				t.Errorf("%s: implausible usage %+v, CPU %.1f%%", j.name, *u, rj.CPUPct)
			}
			if j.procs > 1 && u.Tasks < 3 {
				t.Errorf("%s: %d tasks, want sh and its two awks", j.name, u.Tasks)
			}
			if procState(rj.PID) == "" {
				t.Errorf("%s: pid %d is no process", j.name, rj.PID)
			}
		}
		r := beostat(ctx, t, c, "-j", "-N", "0")
		lines := strings.Split(strings.TrimSpace(r.out), "\n")
		if f := strings.Fields(lines[len(lines)-1]); r.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "Node") ||
			f[0] != "0" || f[1] != fmt.Sprint(running["root"].ID) || !strings.Contains(lines[1], "awk BEGIN") {
			t.Errorf("beostat -j -N 0: %+v; want a header and the root job", r)
		}
		metrics := get(ctx, t, c.StatsURL+"/metrics")
		want := fmt.Sprintf(`beo_job_memory_bytes{node="0",job="%d",uid="%d",comm="awk"}`, running["root"].ID, os.Getuid())
		if !strings.Contains(metrics, want) || !strings.Contains(metrics, `beo_node_jobs_running{node="0"} 1`) {
			t.Errorf("/metrics lacks %s or 1 job running on node 0", want)
		}
	}

	for _, j := range jobs {
		if err := j.cmd.Wait(); err != nil {
			t.Fatalf("%s: bpsh: %v\n%s", j.name, err, j.out)
		}
	}
	var doc dashboard.JobsDoc
	waitFor(t, "no job running", 5*time.Second, func() bool { doc = jobsDoc(ctx, t, c); return len(doc.Running) == 0 })
	if !strings.Contains(get(ctx, t, c.StatsURL+"/metrics"), `beo_node_jobs_finished_total{node="0"} 1`) {
		t.Error("/metrics: no finished job on node 0")
	}
	f, err := os.Open(filepath.Join(c.Dir, "log", "accounting"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	logged, err := acct.ReadLog(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		for what, recs := range map[string][]acct.Record{"beostat -J": doc.Finished, "the accounting log": logged} {
			var rec *acct.Record
			for i := range recs {
				if recs[i].Node == j.node && recs[i].Client == j.cmd.Process.Pid {
					rec = &recs[i]
				}
			}
			if rec == nil {
				t.Errorf("%s: not in %s: %+v", j.name, what, recs)
				continue
			}
			u := rec.Usage
			if rec.Status != 0 || rec.Signal != 0 || rec.Err != "" || rec.UID != j.uid || u == nil ||
				u.CPU < 50*time.Millisecond || u.MemPeak < int64(j.procs)*60<<20 || u.Tasks != 0 || u.Tree != cgroups ||
				rec.Ended.Sub(rec.Started) < time.Second || rec.Ended.Sub(rec.Started) > 30*time.Second {
				t.Errorf("%s in %s: %+v usage %+v; want status 0, uid %d, CPU time, a peak of %d×64 MiB, nothing left", j.name, what, rec, u, j.uid, j.procs)
			}
			if cgroups {
				if run, ok := running[j.name]; ok && (rec.ID != run.ID || u.CPU < run.Usage.CPU || u.MemPeak < run.Usage.Mem) {
					t.Errorf("%s in %s: %+v; want job %d with at least what it had used while running (%+v)", j.name, what, u, run.ID, *run.Usage)
				}
			}
		}
	}
	r := beostat(ctx, t, c, "-J")
	if r.code != 0 || !strings.Contains(r.out, "Status") || len(strings.Split(strings.TrimSpace(r.out), "\n")) < 1+len(jobs) {
		t.Errorf("beostat -J: %+v", r)
	}
}

// get returns the body at url.
func get(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
