package beostat

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/acct"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/wire"
)

type fakeJobs struct {
	running  []acct.Job
	finished []acct.Record
}

func (f fakeJobs) Jobs() []acct.Job         { return f.running }
func (f fakeJobs) Finished() []acct.Record  { return f.finished }
func (f fakeJobs) JobTotals() []acct.Totals { return nil }

func TestJobs(t *testing.T) {
	started := time.Now().Add(-75 * time.Second)
	cg := &wire.Usage{At: 70 * time.Second, CPU: 65 * time.Second, User: 60 * time.Second, System: 5 * time.Second,
		Mem: 1536 << 20, MemPeak: 2 << 30, OOMKills: 0, Tasks: 4, TasksPeak: 9, ReadBytes: 4096, WriteBytes: 0, Tree: true}
	rss := &wire.Usage{At: time.Second, CPU: 350 * time.Millisecond, Mem: 64 << 20, MemPeak: 100 << 20, MemRSS: true,
		OOMKills: -1, Tasks: 1, TasksPeak: 1, ReadBytes: -1, WriteBytes: -1, Tree: true}
	src := fakeJobs{
		running: []acct.Job{
			{ID: 7, Node: 0, PID: 4242, Ghost: 5151, Client: 5000, UID: 0, Argv: []string{"/usr/bin/awk", "BEGIN {\tx }"},
				Started: started, Usage: cg, CPUPct: 187.5},
			{ID: 8, Node: 1, PID: 17, Ghost: 5000, Client: 5000, UID: 4000000, Argv: []string{"sleep", "60"},
				Started: started, CPUPct: -1},
			{ID: 9, Node: 1, PID: 18, Ghost: 5001, Client: 5000, UID: 4000000, Argv: []string{"burn"},
				Started: started, Usage: rss, CPUPct: 35},
		},
		finished: []acct.Record{
			{Job: acct.Job{ID: 3, Node: 0, PID: 10, Ghost: 11, UID: 0, Argv: []string{"true"}, Started: started, Usage: rss, CPUPct: 35},
				Ended: started.Add(time.Second), Status: 0},
			{Job: acct.Job{ID: 4, Node: 1, PID: 12, Ghost: 13, UID: 0, Argv: []string{"sleep", "1000"}, Started: started, Usage: cg},
				Ended: started.Add(70 * time.Second), Signal: 9},
			{Job: acct.Job{ID: 5, Node: 1, PID: 14, Ghost: 15, UID: 0, Argv: []string{"x"}, Started: started},
				Ended: started.Add(2 * time.Second), Err: "connection lost"},
		},
	}
	url := masterJobs(t, src)
	out, err := run(t, "-url", url, "-j")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("-j: %d lines, want a header and 3 jobs:\n%s", len(lines), out)
	}
	for i, want := range [][]string{
		{"Node", "Job", "PID", "Ghost", "User", "CPU%", "CPU", "Mem", "Peak", "Tasks", "Read", "Write", "Elapsed", "Command"},
		{"0", "7", "4242", "5151", "root", "187.5%", "1m05s", "1.5G", "2.0G", "4", "4.0K", "0B", "1m15s", "/usr/bin/awk", "BEGIN", "{?x", "}"},
		{"1", "8", "17", "5000", "4000000", "-", "-", "-", "-", "-", "-", "-", "1m15s", "sleep", "60"},
		{"1", "9", "18", "5001", "4000000", "35.0%", "0.35s", "~64.0M", "~100.0M", "1", "-", "-", "1m15s", "burn"},
	} {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("-j line %d:\n got %q\nwant %q", i, got, want)
		}
	}
	out, err = run(t, "-url", url, "-J", "-N", "1")
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("-J -N 1: %d lines, want a header and 2 jobs:\n%s", len(lines), out)
	}
	for i, want := range [][]string{
		{"Node", "Job", "PID", "Ghost", "User", "Status", "CPU%", "CPU", "Peak", "Tasks", "Read", "Write", "Ended", "Elapsed", "Command"},
		{"1", "4", "12", "13", "root", "SIGKILL", "0.0%", "1m05s", "2.0G", "9", "4.0K", "0B", started.Add(70 * time.Second).Format("15:04:05"), "1m10s", "sleep", "1000"},
		{"1", "5", "14", "15", "root", "lost", "0.0%", "-", "-", "-", "-", "-", started.Add(2 * time.Second).Format("15:04:05"), "2s", "x"},
	} {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("-J line %d:\n got %q\nwant %q", i, got, want)
		}
	}
	out, err = run(t, "-url", url, "-j", "-json", "-N", "0")
	var doc dashboard.JobsDoc
	if err != nil || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Running) != 1 || doc.Running[0].Usage.MemPeak != 2<<30 || doc.Finished != nil {
		t.Errorf("-j -json -N 0: %v %s", err, out)
	}
	if _, err := run(t, "-url", master(t), "-j"); err == nil || !strings.Contains(err.Error(), "no job accounting") {
		t.Errorf("-j without a master: %v, want no job accounting", err)
	}
}
