package master

import (
	"slices"

	"github.com/beo-cluster/beo/pkg/acct"
	"github.com/beo-cluster/beo/pkg/wire"
)

// Job accounting (pkg/acct).
//
// A job's node reports what it uses on the job's exec stream
// (wire.Update.Usage, a second in and then every usage interval); the
// master keeps the latest two readings with its record of the process
// (relay.usage, relay.prev: applyUpdate), and Jobs lists every running
// job with them. The Result's final Usage goes, with the job's identity
// and exit status, to the ledger: per-node totals and the latest
// finished jobs before the client has the Result, a line of
// Config.Accounting right after. Jobs on the master itself (node
// -1, local.go) are ordinary local processes and are not booked here.

// Jobs lists the running jobs with their latest usage, by id.
func (m *Master) Jobs() []acct.Job {
	m.mu.Lock()
	out := make([]acct.Job, 0, len(m.procs))
	for _, r := range m.procs {
		if !r.ended {
			out = append(out, jobOf(r))
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b acct.Job) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// jobOf is r as a running job; m.mu is held.
func jobOf(r *relay) acct.Job {
	p := r.proc
	j := acct.Job{ID: r.id, Node: p.Node, PID: p.PID, Ghost: p.Ghost, Client: p.Client, UID: p.UID,
		Argv: slices.Clone(p.Argv), Started: p.Started, CPUPct: acct.CPUPct(r.prev, r.usage)}
	if r.usage != nil {
		u := *r.usage
		j.Usage = &u
	}
	return j
}

// Finished lists the latest finished jobs, oldest first.
func (m *Master) Finished() []acct.Record { return m.ledger.Recent() }

// JobTotals are the finished jobs' totals per node.
func (m *Master) JobTotals() []acct.Totals { return m.ledger.Totals() }

// book books a finished job in the ledger's memory and takes it off the
// running list, before its client has the Result (so that beostat -J
// right after bpsh finds it), and returns its record for the log. res
// is its node's Result (an Err of the master's own when the node was
// lost), whose Usage is the final one; without it the last reading
// stands.
func (m *Master) book(r *relay, res wire.Result) acct.Record {
	m.mu.Lock()
	j := jobOf(r)
	r.ended = true
	m.mu.Unlock()
	if res.Usage != nil {
		j.Usage = res.Usage
	}
	j.CPUPct = acct.CPUPct(nil, j.Usage) // over its whole life
	rec := acct.Record{Job: j, Ended: m.clock(), Status: acct.ExitStatus(res.Status, res.Signal, res.Err), Signal: res.Signal, Err: res.Err}
	m.ledger.Book(rec)
	return rec
}
