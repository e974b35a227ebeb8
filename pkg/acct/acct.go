// Package acct is job accounting on the master: what each job uses on
// its node while it runs (beostat -j, the dashboard's /api/jobs and
// /metrics), and what each used in all once it ended (beostat -J, and
// one line per job in the accounting log, LogDir/accounting) — what
// BProc clusters had from process accounting.
//
// A job here is one remote process and everything it forks on its node:
// what bpmaster runs for one bpsh (beorun, mpirun …) on one node, in a
// cgroup of its own there (pkg/slave cgroup.go). Its id is the master's
// exec id (unique while the master runs); its identity — node, pid on
// the node, uid, command, start time, the ghost standing for it and the
// client that started it — is the master's own record of the process
// (pkg/master ghosts.go).
//
// # Where the numbers come from, and how they travel
//
// bpslave reads the job's cgroup (pkg/cgroup Usage: cpu.stat, memory,
// pids, io) about a second into the job and then every usage interval
// (5 s, the stats interval of a node), and sends it on the job's own
// exec stream (wire.Update.Usage); when the job is over it reads the
// group once more, before removing it, and that final reading travels in
// the Result (wire.Result.Usage). The master keeps the latest two
// readings with its record of the process (CPUPct is the use between
// them), and books the final one here (Ledger).
//
// Not in sendstats' datagrams (pkg/stats), though those carry the rest
// of beostat's numbers, for four reasons the code made plain:
//
//   - identity: the master already holds every job's record (node, pid,
//     uid, command, ghost, client) keyed by the exec stream the usage
//     arrives on. Datagrams would have to carry uids and command lines
//     (a node of a thousand short jobs would not fit MaxSize) and be
//     joined to the master's records by node and pid, which the node
//     recycles.
//   - the end: a datagram is a sample every 5 s; a job's totals are
//     read when it is over, and a job of two seconds falls between two
//     samples. The Result is the one message that comes after the job
//     and before its cgroup is gone.
//   - trust: stats are UDP, accepted by source address; the session is
//     TLS with the node's pinned key. Accounting is what users are
//     charged by.
//   - who knows: sendstats is another process (and runs on non-beo hosts,
//     which have no jobs); only bpslave knows which groups are jobs. It
//     already reads each job's group for its process tree (kids.go), so
//     accounting costs a few more reads of the same directory.
//
// The price is a small frame per running job per usage interval on the
// node's session, beside the job's own stream; the stats datagram and
// its format are unchanged.
//
// # The accounting log
//
// Ledger appends one JSON object per finished job, one line each (a
// Record; JSON because commands hold any byte, and because a line is
// self-describing for jq and for fields added later), to Config.Path,
// opened for each line (so an outside logrotate works too), mode 0640:
// it names every user's commands. When a line would make the file
// larger than Config.Max it is renamed Path.1 (Path.1 to Path.2 …, up
// to Config.Keep old files, the oldest dropped), so the log never takes
// more than (Keep+1)·Max bytes. The Ledger also keeps the latest Recent
// records and per-node totals in memory for the dashboard; both start
// empty with the master. The master books a job there (Book) before its
// client has the exit status — a script's beostat -J right after its
// bpsh finds the job — and writes its line (Log) right after, off the
// client's path.
//
// /api/jobs and the log show every user's command lines, as ps shows
// every ghost's on the master.
package acct

import (
	"strings"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// Job is a running job as the master knows it.
type Job struct {
	ID   uint64 `json:"id"`   // the master's exec id
	Node int    `json:"node"` // where it runs
	PID  int    `json:"pid"`  // its process on the node
	// Ghost stands for it in the master's process table (pkg/ghost): the
	// pid `kill` and `ps` know. Until the ghost is there, and for a
	// client without ghosts, it is the client's pid.
	Ghost   int         `json:"ghost"`
	Client  int         `json:"client"` // the master-side pid of the bpsh (beorun, mpirun …) that started it
	UID     uint32      `json:"uid"`
	Argv    []string    `json:"argv"`
	Started time.Time   `json:"started"` // the master's clock
	Usage   *wire.Usage `json:"usage,omitempty"`
	// CPUPct is the job's CPU use between its last two readings, in % of
	// one CPU (200 = two CPUs busy); after the first reading, since its
	// start; -1 before any.
	CPUPct float64 `json:"cpu_pct"`
}

// Record is a finished job: a line of the accounting log. Usage is the
// final one (nil when the node was lost first and never reported);
// CPUPct the average over the job's life.
type Record struct {
	Job
	Ended time.Time `json:"ended"`
	// Status is the exit code; for a job killed by a signal 128+N, as a
	// shell reports it, and 255 for one with no exit status (Err), as
	// bpsh exits: a log filtered on status != 0 finds every failure.
	Status int `json:"status"`
	Signal int `json:"signal,omitempty"` // the signal that killed it
	// Err says why the job has no exit status: the node was lost, the
	// node could not wait for it.
	Err string `json:"err,omitempty"`
}

// NoStatus is Record.Status for a job that has no exit status.
const NoStatus = 255

// ExitStatus is the Status of a job that exited with status, was killed
// by signal (0: none), or has no status because of err ("": it has one).
func ExitStatus(status, signal int, err string) int {
	switch {
	case err != "":
		return NoStatus
	case signal != 0:
		return 128 + signal
	}
	return status
}

// CPUPct is the CPU use, in % of one CPU, between two readings of a
// job: prev nil (or not older), since its start; cur nil, -1. A window
// shorter than MinCPUWindow is -1 too: the CPU a job's start costs
// (its exec, before its clock starts) makes a few milliseconds' rate
// meaningless — `hostname` showed 122% for 0.00 s of CPU.
func CPUPct(prev, cur *wire.Usage) float64 {
	switch {
	case cur == nil:
		return -1
	case prev != nil && cur.At > prev.At:
		if cur.At-prev.At < MinCPUWindow {
			return -1
		}
		return 100 * float64(max(cur.CPU-prev.CPU, 0)) / float64(cur.At-prev.At)
	case cur.At >= MinCPUWindow:
		return 100 * float64(cur.CPU) / float64(cur.At)
	}
	return -1
}

// MinCPUWindow is the shortest time CPUPct makes a rate of.
const MinCPUWindow = 100 * time.Millisecond

// Comm is the short name of a command, for labels and narrow columns:
// the last element of argv[0], at most 32 bytes, valid UTF-8.
func Comm(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	s := argv[0]
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 32 {
		s = s[:32]
	}
	return strings.ToValidUTF8(s, "?")
}
