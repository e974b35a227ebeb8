package beostat

import (
	"fmt"
	"io"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/beo-cluster/beo/pkg/acct"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/wire"
	"golang.org/x/sys/unix"
)

// The job views (-j running, -J finished): one line per job, from the
// master's /api/jobs (pkg/acct). Columns:
//
//	Node Job PID Ghost User  CPU% CPU Mem Peak Tasks Read Write Elapsed Command   (-j)
//	Node Job PID Ghost User  Status CPU% CPU Peak Tasks Read Write Ended Elapsed Command   (-J)
//
// CPU% is the job's use between its node's last two readings, in % of
// one CPU (200% = two busy); for a finished job, its average. CPU is
// user + system time of every process the job had; Mem the memory its
// cgroup is charged, or — marked "~" — the sum of its processes'
// resident sets where the node has no memory controller; Peak the
// highest. Read and Write are bytes that reached block devices. "-" is
// what the node could not account, or has not reported yet (a job's
// first reading comes about a second after it starts).

// users resolves uids to names, once each (the master's names; a uid
// without one prints as its number).
type users map[uint32]string

func (u users) name(uid uint32) string {
	if n, ok := u[uid]; ok {
		return n
	}
	n := strconv.FormatUint(uint64(uid), 10)
	if usr, err := user.LookupId(n); err == nil {
		n = usr.Username
	}
	u[uid] = n
	return n
}

func printJobs(w io.Writer, doc dashboard.JobsDoc) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Node\tJob\tPID\tGhost\tUser\tCPU%\tCPU\tMem\tPeak\tTasks\tRead\tWrite\tElapsed\tCommand")
	us := users{}
	for _, j := range doc.Running {
		u := j.Usage
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.Node, j.ID, j.PID, j.Ghost, us.name(j.UID),
			pct(j.CPUPct), cpuTime(u), mem(u, func(u *wire.Usage) int64 { return u.Mem }),
			mem(u, func(u *wire.Usage) int64 { return u.MemPeak }), count(u, func(u *wire.Usage) int64 { return u.Tasks }),
			bytesOf(u, func(u *wire.Usage) int64 { return u.ReadBytes }), bytesOf(u, func(u *wire.Usage) int64 { return u.WriteBytes }),
			elapsed(doc.Time.Sub(j.Started)), command(j.Argv))
	}
	return tw.Flush()
}

func printFinished(w io.Writer, doc dashboard.JobsDoc) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Node\tJob\tPID\tGhost\tUser\tStatus\tCPU%\tCPU\tPeak\tTasks\tRead\tWrite\tEnded\tElapsed\tCommand")
	us := users{}
	for _, r := range doc.Finished {
		u := r.Usage
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Node, r.ID, r.PID, r.Ghost, us.name(r.UID),
			status(r), pct(r.CPUPct), cpuTime(u), mem(u, func(u *wire.Usage) int64 { return u.MemPeak }),
			count(u, func(u *wire.Usage) int64 { return u.TasksPeak }),
			bytesOf(u, func(u *wire.Usage) int64 { return u.ReadBytes }), bytesOf(u, func(u *wire.Usage) int64 { return u.WriteBytes }),
			clock(r.Ended, doc.Time), elapsed(r.Ended.Sub(r.Started)), command(r.Argv))
	}
	return tw.Flush()
}

// status is how a finished job ended: its exit code, the signal that
// killed it, or why neither is known.
func status(r acct.Record) string {
	switch {
	case r.Err != "":
		return "lost"
	case r.Signal != 0:
		return signalName(r.Signal)
	}
	return strconv.Itoa(r.Status)
}

// signalName names signal n ("SIGKILL"), or "signal N".
func signalName(n int) string {
	if name := unix.SignalName(syscall.Signal(n)); name != "" {
		return name
	}
	return "signal " + strconv.Itoa(n)
}

func cpuTime(u *wire.Usage) string {
	if u == nil {
		return "-"
	}
	return seconds(u.CPU)
}

// seconds prints a CPU time: 0.35s, 12.3s, 5m06s, 2h03m.
func seconds(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d/time.Second)%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d/time.Minute)%60)
}

// mem prints a memory figure of u, "~" before it when it is the
// processes' resident sets rather than the cgroup's charge.
func mem(u *wire.Usage, f func(*wire.Usage) int64) string {
	if u == nil || f(u) < 0 {
		return "-"
	}
	s := human(uint64(f(u)))
	if u.MemRSS {
		s = "~" + s
	}
	return s
}

func bytesOf(u *wire.Usage, f func(*wire.Usage) int64) string {
	if u == nil || f(u) < 0 {
		return "-"
	}
	return human(uint64(f(u)))
}

func count(u *wire.Usage, f func(*wire.Usage) int64) string {
	if u == nil || f(u) < 0 {
		return "-"
	}
	return strconv.FormatInt(f(u), 10)
}

// elapsed prints a job's wall time as duration does, with seconds below
// an hour.
func elapsed(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return duration(d.Seconds())
}

// clock prints when something happened: the time of day within the
// last day, else the date.
func clock(t, now time.Time) string {
	t = t.Local()
	if now.Sub(t) < 24*time.Hour && now.Sub(t) > -time.Hour {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02")
}

// command prints argv on one line: arguments apart by spaces, control
// characters as '?', at most 200 bytes.
func command(argv []string) string {
	s := strings.Join(argv, " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
