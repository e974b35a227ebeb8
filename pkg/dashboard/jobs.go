package dashboard

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/beo-cluster/beo/pkg/acct"
	"github.com/beo-cluster/beo/pkg/nodespec"
)

// JobSource is the master's job accounting (pkg/master acct.go, see
// pkg/acct). A dashboard without one — recvstats run alone — shows no
// jobs.
type JobSource interface {
	Jobs() []acct.Job         // running, by id
	Finished() []acct.Record  // the latest finished, oldest first
	JobTotals() []acct.Totals // finished jobs per node since the master started
}

// DefaultMaxJobSeries bounds the jobs /metrics exports series for.
const DefaultMaxJobSeries = 5000

// JobsDoc is the /api/jobs document.
type JobsDoc struct {
	Time time.Time `json:"time"`
	// Accounting is false where no master feeds the dashboard (recvstats
	// alone): there are no jobs to show, rather than none running.
	Accounting bool          `json:"accounting"`
	Running    []acct.Job    `json:"running"`
	Finished   []acct.Record `json:"finished"`
	Totals     []acct.Totals `json:"totals"`
}

// apiJobs serves /api/jobs: the running jobs, the latest finished ones
// and the per-node totals; ?node=SPEC limits all three to a node spec.
func (s *Server) apiJobs(w http.ResponseWriter, r *http.Request) {
	doc := JobsDoc{Time: s.cfg.Clock(), Running: []acct.Job{}, Finished: []acct.Record{}, Totals: []acct.Totals{}}
	if src := s.cfg.Jobs; src != nil {
		doc.Accounting = true
		doc.Running, doc.Finished, doc.Totals = src.Jobs(), src.Finished(), src.JobTotals()
	}
	if spec := r.URL.Query().Get("node"); spec != "" {
		sel, err := nodespec.Parse(spec, cluster(s.cfg.Table.All()))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		in := make(map[int]bool, len(sel))
		for _, n := range sel {
			in[n] = true
		}
		doc.Running = onNodes(doc.Running, in, func(j acct.Job) int { return j.Node })
		doc.Finished = onNodes(doc.Finished, in, func(r acct.Record) int { return r.Node })
		doc.Totals = onNodes(doc.Totals, in, func(t acct.Totals) int { return t.Node })
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(doc); err != nil {
		s.cfg.Log.Debug("api/jobs: write", "err", err)
	}
}

// onNodes returns, in a new slice, the elements of l on a node in in
// (l is the source's: never changed here).
func onNodes[T any](l []T, in map[int]bool, node func(T) int) []T {
	out := []T{}
	for _, x := range l {
		if in[node(x)] {
			out = append(out, x)
		}
	}
	return out
}

// jobMetrics writes the job families (metrics.go): per node, running
// jobs and the totals of finished ones; per running job (the oldest
// MaxJobSeries), its usage. A job's series go when it ends, so their
// number is bounded by what runs; beo_jobs_unexported counts those left
// out.
func (s *Server) jobMetrics(m metricWriter, table []int) {
	src := s.cfg.Jobs
	if src == nil {
		return
	}
	jobs, totals := src.Jobs(), src.JobTotals()
	running := map[int]int{}
	for _, j := range jobs {
		running[j.Node]++
	}
	m.family("beo_node_jobs_running", "gauge", "Jobs running on the node.")
	for _, n := range table {
		m.sample("beo_node_jobs_running", float64(running[n]), "node", itoa(n))
	}
	for _, f := range []struct {
		name, help string
		val        func(t acct.Totals) float64
	}{
		{"beo_node_jobs_finished_total", "Jobs finished on the node since the master started.",
			func(t acct.Totals) float64 { return float64(t.Jobs) }},
		{"beo_node_jobs_failed_total", "Finished jobs that exited non-zero, were killed by a signal, or were lost.",
			func(t acct.Totals) float64 { return float64(t.Failed) }},
		{"beo_node_jobs_cpu_seconds_total", "CPU time of the jobs finished on the node.",
			func(t acct.Totals) float64 { return t.CPU.Seconds() }},
	} {
		m.family(f.name, "counter", f.help)
		for _, t := range totals {
			m.sample(f.name, f.val(t), "node", itoa(t.Node))
		}
	}
	limit := s.cfg.MaxJobSeries
	if limit <= 0 {
		limit = DefaultMaxJobSeries
	}
	m.family("beo_jobs_unexported", "gauge", "Running jobs left out of the beo_job_ series (more than the dashboard exports).")
	m.sample("beo_jobs_unexported", float64(max(len(jobs)-limit, 0)))
	jobs = jobs[:min(len(jobs), limit)] // by id: the oldest, whose series are already known
	labels := func(j *acct.Job, more ...string) []string {
		return append([]string{"node", itoa(j.Node), "job", strconv.FormatUint(j.ID, 10),
			"uid", strconv.FormatUint(uint64(j.UID), 10), "comm", acct.Comm(j.Argv)}, more...)
	}
	m.family("beo_job_start_time_seconds", "gauge", "When the job started (the master's clock).")
	for i := range jobs {
		m.sample("beo_job_start_time_seconds", float64(jobs[i].Started.UnixMilli())/1000, labels(&jobs[i])...)
	}
	m.family("beo_job_cpu_seconds_total", "counter", "CPU time of every process the job had on its node, by mode.")
	for i := range jobs {
		if u := jobs[i].Usage; u != nil {
			m.sample("beo_job_cpu_seconds_total", u.User.Seconds(), labels(&jobs[i], "mode", "user")...)
			m.sample("beo_job_cpu_seconds_total", u.System.Seconds(), labels(&jobs[i], "mode", "system")...)
		}
	}
	for _, f := range []struct {
		name, typ, help string
		val             func(j *acct.Job) int64 // -1: unknown
	}{
		{"beo_job_memory_bytes", "gauge", "Memory charged to the job's cgroup, or the sum of its processes' resident sets where the node has no memory controller.",
			func(j *acct.Job) int64 { return j.Usage.Mem }},
		{"beo_job_memory_peak_bytes", "gauge", "The job's highest memory.",
			func(j *acct.Job) int64 { return j.Usage.MemPeak }},
		{"beo_job_tasks", "gauge", "The job's processes and threads.",
			func(j *acct.Job) int64 { return j.Usage.Tasks }},
		{"beo_job_io_read_bytes_total", "counter", "Bytes the job read from block devices.",
			func(j *acct.Job) int64 { return j.Usage.ReadBytes }},
		{"beo_job_io_write_bytes_total", "counter", "Bytes the job wrote to block devices.",
			func(j *acct.Job) int64 { return j.Usage.WriteBytes }},
		{"beo_job_oom_kills_total", "counter", "The job's processes the kernel's OOM killer killed.",
			func(j *acct.Job) int64 { return j.Usage.OOMKills }},
	} {
		m.family(f.name, f.typ, f.help)
		for i := range jobs {
			if jobs[i].Usage == nil {
				continue
			}
			if v := f.val(&jobs[i]); v >= 0 {
				m.sample(f.name, float64(v), labels(&jobs[i])...)
			}
		}
	}
}
