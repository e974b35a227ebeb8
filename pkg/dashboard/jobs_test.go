package dashboard

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/acct"
	"github.com/beo-cluster/beo/pkg/wire"
)

// fakeJobs is a master's job accounting.
type fakeJobs struct {
	running  []acct.Job
	finished []acct.Record
	totals   []acct.Totals
}

func (f *fakeJobs) Jobs() []acct.Job         { return f.running }
func (f *fakeJobs) Finished() []acct.Record  { return f.finished }
func (f *fakeJobs) JobTotals() []acct.Totals { return f.totals }

func testJobs() *fakeJobs {
	started := time.Unix(1700000000, 0)
	use := &wire.Usage{At: 4 * time.Second, CPU: 3 * time.Second, User: 2500 * time.Millisecond, System: 500 * time.Millisecond,
		Mem: 64 << 20, MemPeak: 100 << 20, MemRSS: true, OOMKills: -1, Tasks: 2, TasksPeak: 3,
		ReadBytes: -1, WriteBytes: -1, Tree: true}
	return &fakeJobs{
		running: []acct.Job{
			{ID: 7, Node: 0, PID: 100, Ghost: 200, Client: 300, UID: 1000, Argv: []string{"/usr/bin/awk", "BEGIN{}"},
				Started: started, Usage: use, CPUPct: 75},
			{ID: 8, Node: 1, PID: 101, Ghost: 300, Client: 300, UID: 65534, Argv: []string{`we"ird\`}, Started: started, CPUPct: -1},
			{ID: 9, Node: 1, PID: 102, Ghost: 300, Client: 300, UID: 0, Argv: []string{"sleep", "9"}, Started: started, CPUPct: -1},
		},
		finished: []acct.Record{{Job: acct.Job{ID: 3, Node: 1, Argv: []string{"true"}, Usage: use}, Ended: started, Status: 1}},
		totals:   []acct.Totals{{Node: 1, Jobs: 4, Failed: 1, CPU: 1500 * time.Millisecond}},
	}
}

// TestAPIJobs: /api/jobs lists what the job source says, limited to a
// node spec; without a source it says there is no accounting.
func TestAPIJobs(t *testing.T) {
	f := newFixtureJobs(t, testJobs())
	_, body := f.get(t, "/api/jobs")
	var doc JobsDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if !doc.Accounting || len(doc.Running) != 3 || len(doc.Finished) != 1 || len(doc.Totals) != 1 {
		t.Errorf("all: %+v", doc)
	}
	if u := doc.Running[0].Usage; u == nil || u.MemPeak != 100<<20 || u.CPU != 3*time.Second || doc.Running[0].CPUPct != 75 {
		t.Errorf("job 7's usage did not survive JSON: %+v", doc.Running[0])
	}
	doc, err := FetchJobs(context.Background(), nil, f.srv.URL, "0")
	if err != nil || len(doc.Running) != 1 || doc.Running[0].ID != 7 || len(doc.Finished) != 0 || len(doc.Totals) != 0 {
		t.Errorf("node 0: %+v %v", doc, err)
	}
	if _, err := FetchJobs(context.Background(), nil, f.srv.URL, "nonsense"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("bad spec: %v, want a 400", err)
	}
	none := newFixture(t)
	doc, err = FetchJobs(context.Background(), nil, none.srv.URL, "")
	if err != nil || doc.Accounting || doc.Running == nil || len(doc.Running) != 0 {
		t.Errorf("no job source: %+v %v; want accounting false and empty lists", doc, err)
	}
}

// TestJobMetrics: every node has beo_node_jobs_running; running jobs
// have their series (no more than MaxJobSeries, the rest counted),
// unknown values none; totals of finished jobs per node.
func TestJobMetrics(t *testing.T) {
	f := newFixtureJobs(t, testJobs()) // MaxJobSeries 2
	_, body := f.get(t, "/metrics")
	series, value := parseMetrics(t, body)
	job7 := map[string]string{"node": "0", "job": "7", "uid": "1000", "comm": "awk"}
	with := func(l map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for a, b := range l {
			out[a] = b
		}
		return out
	}
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"beo_node_jobs_running", map[string]string{"node": "0"}, 1},
		{"beo_node_jobs_running", map[string]string{"node": "1"}, 2},
		{"beo_node_jobs_running", map[string]string{"node": "2"}, 0},
		{"beo_node_jobs_finished_total", map[string]string{"node": "1"}, 4},
		{"beo_node_jobs_failed_total", map[string]string{"node": "1"}, 1},
		{"beo_node_jobs_cpu_seconds_total", map[string]string{"node": "1"}, 1.5},
		{"beo_jobs_unexported", nil, 1},
		{"beo_job_start_time_seconds", job7, 1700000000},
		{"beo_job_start_time_seconds", map[string]string{"job": "8", "comm": `we"ird\`, "uid": "65534"}, 1700000000},
		{"beo_job_cpu_seconds_total", with(job7, "mode", "user"), 2.5},
		{"beo_job_cpu_seconds_total", with(job7, "mode", "system"), 0.5},
		{"beo_job_memory_bytes", job7, 64 << 20},
		{"beo_job_memory_peak_bytes", job7, 100 << 20},
		{"beo_job_tasks", job7, 2},
	} {
		got, ok := value(tt.name, tt.labels)
		if !ok || got != tt.want {
			t.Errorf("%s%v = %v (found %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}
	for name, want := range map[string]int{
		"beo_node_jobs_running":       3,
		"beo_job_start_time_seconds":  2, // jobs 7 and 8: job 9 is past MaxJobSeries
		"beo_job_cpu_seconds_total":   2, // job 8 has no reading yet
		"beo_job_io_read_bytes_total": 0, // unknown: no series
		"beo_job_oom_kills_total":     0,
	} {
		if series[name] != want {
			t.Errorf("%s: %d series, want %d", name, series[name], want)
		}
	}
	// recvstats alone: no job families at all.
	_, body = newFixture(t).get(t, "/metrics")
	if strings.Contains(body, "beo_job") {
		t.Errorf("job series without a job source:\n%s", body)
	}
}
