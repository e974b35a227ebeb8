// Package beostat implements beostat: a text listing of the /proc-derived
// data every node's sendstats reports (CPU, load, memory, swap, network,
// root file system), as the master's recvstats holds it. It reads the
// master's read-only /api/stats (pkg/dashboard; http://127.0.0.1:5546 by
// default, -url or $BEOSTAT_URL to change). On a node (its bpslave relays
// bproc clients to the master: bproc.Client.Where) the default is the
// dashboard's port at the master's cluster address instead, never the
// node's own loopback: it answers there when beostatus listens on the
// cluster network, and otherwise beostat fails naming that address.
//
//	beostat [-url URL] [-N NODESPEC] [-c] [-C] [-l] [-m] [-n] [-D] [-b] [-j] [-J] [-json]
//
// Without a section flag every section is shown; -c per-core CPU, -C CPU
// summary, -l load and processes, -m memory and swap, -n network, -D root
// file system. -b prints one line per node instead. -N limits the listing
// to a node spec (3, 0-7, allalive, …); without it every node that has
// sent stats is listed. A node in the spec that never sent stats is listed
// as "no stats". -json prints the /api/stats document itself.
//
// -j lists the running jobs instead, one line each, with what each has
// used on its node (CPU, memory, tasks, I/O: its cgroup's accounting,
// pkg/acct); -J the latest finished jobs the master keeps, with how
// each ended and what it used in all (every finished job is a line of
// the master's accounting log). Both read /api/jobs; with -json they
// print that document. jobs.go says what the columns mean.
package beostat

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/nodespec"
	"github.com/beo-cluster/beo/pkg/stats"
)

const usage = "usage: beostat [-url URL] [-N NODESPEC] [-c] [-C] [-l] [-m] [-n] [-D] [-b] [-j] [-J] [-json]"

type sections struct{ cores, cpu, load, mem, net, disk bool }

// defaultURL is the dashboard's URL when neither -url nor $BEOSTAT_URL
// says: dashboard.DefaultURL on the master, its port at the master's
// cluster address on a node.
func defaultURL(ctx context.Context) string {
	cl, err := bproc.Dial(ctx, "")
	if err != nil {
		return dashboard.DefaultURL // no bproc socket: not a node of beo's
	}
	defer cl.Close()
	if n, err := cl.Where(ctx); err != nil || n == nodespec.Master {
		return dashboard.DefaultURL
	}
	st, err := cl.Status(ctx)
	if err != nil || st.MasterAddr == "" {
		return dashboard.DefaultURL
	}
	_, port, _ := net.SplitHostPort(dashboard.DefaultAddr)
	return "http://" + net.JoinHostPort(st.MasterAddr, port)
}

// Run is the beostat applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet("beostat", usage, stdio.Err)
	url := fs.String("url", os.Getenv(dashboard.URLEnv), "the master's beostatus URL (default $"+dashboard.URLEnv+", else "+dashboard.DefaultURL+" on the master and the master's cluster address on a node)")
	spec := fs.String("N", "", "nodes to show (node spec)")
	var s sections
	fs.BoolVar(&s.cores, "c", false, "per-core CPU use and ticks")
	fs.BoolVar(&s.cpu, "C", false, "CPU use summary")
	fs.BoolVar(&s.load, "l", false, "load average and processes")
	fs.BoolVar(&s.mem, "m", false, "memory and swap")
	fs.BoolVar(&s.net, "n", false, "network interfaces")
	fs.BoolVar(&s.disk, "D", false, "root file system")
	brief := fs.Bool("b", false, "one line per node")
	running := fs.Bool("j", false, "the running jobs and what each uses (CPU, memory, tasks, I/O)")
	finished := fs.Bool("J", false, "the latest finished jobs: how each ended and what it used")
	asJSON := fs.Bool("json", false, "print the master's JSON document")
	timeout := fs.Duration("timeout", 10*time.Second, "give up on the master after this long")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &applets.Usage{Line: usage, Msg: "unexpected arguments (node specs go after -N)"}
	}
	if s == (sections{}) {
		s = sections{cores: true, cpu: true, load: true, mem: true, net: true, disk: true}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if *url == "" {
		*url = defaultURL(ctx)
	}
	if *running || *finished {
		return jobs(ctx, stdio.Out, *url, *spec, *running, *finished, *asJSON)
	}
	snap, err := dashboard.Fetch(ctx, nil, *url, *spec)
	if err != nil {
		return err
	}
	if *spec == "" { // all nodes: only those that sent stats
		var keep []dashboard.Node
		for _, n := range snap.Nodes {
			if n.Stats != nil {
				keep = append(keep, n)
			}
		}
		snap.Nodes = keep
	}
	if *asJSON {
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(snap)
	}
	if *brief {
		return printBrief(stdio.Out, snap)
	}
	for i, n := range snap.Nodes {
		if i > 0 {
			fmt.Fprintln(stdio.Out)
		}
		printNode(stdio.Out, n, snap.Time, s)
	}
	return nil
}

// jobs is -j and -J: the running jobs, then the finished ones.
func jobs(ctx context.Context, w io.Writer, url, spec string, running, finished, asJSON bool) error {
	doc, err := dashboard.FetchJobs(ctx, nil, url, spec)
	if err != nil {
		return err
	}
	if !doc.Accounting {
		return fmt.Errorf("%s has no job accounting: its recvstats runs without bpmaster", url)
	}
	if asJSON {
		if !running {
			doc.Running = nil
		}
		if !finished {
			doc.Finished = nil
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	if running {
		if err := printJobs(w, doc); err != nil {
			return err
		}
	}
	if running && finished {
		fmt.Fprintln(w)
	}
	if finished {
		return printFinished(w, doc)
	}
	return nil
}

func printBrief(w io.Writer, snap dashboard.Snapshot) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "Node\tStatus\tLoad1\tCPU%\tMem%\tRx/s\tTx/s\tProcs\tUptime")
	for _, n := range snap.Nodes {
		if n.Stats == nil {
			fmt.Fprintf(tw, "%d\t%s\t-\t-\t-\t-\t-\t-\t-\n", n.Node, n.State)
			continue
		}
		r := n.Stats.Report
		var rx, tx float64
		for _, f := range r.Net {
			if f.Name != "lo" {
				rx, tx = rx+f.RxBps, tx+f.TxBps
			}
		}
		state := n.State
		if n.Stats.Stale {
			state += "(stale)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%.2f\t%s\t%s\t%s\t%s\t%d\t%s\n", n.Node, state, r.Load[0], pct(r.CPU),
			pct(ratio(r.Mem.Used, r.Mem.Total)), human(uint64(rx)), human(uint64(tx)), r.Procs, duration(r.Uptime))
	}
	return tw.Flush()
}

func printNode(w io.Writer, n dashboard.Node, now time.Time, s sections) {
	head := fmt.Sprintf("Node %d (%s)", n.Node, n.State)
	if n.Addr != "" {
		head += " " + n.Addr
	}
	if n.Stats == nil {
		fmt.Fprintf(w, "%s: no stats\n", head)
		return
	}
	st, r := n.Stats, n.Stats.Report
	age := now.Sub(st.Last).Round(100 * time.Millisecond)
	stale := ""
	if st.Stale {
		stale = ", stale"
	}
	fmt.Fprintf(w, "%s: last sample %s ago%s, uptime %s\n", head, age, stale, duration(r.Uptime))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	if s.load {
		fmt.Fprintf(tw, "  load\t%.2f %.2f %.2f\trunning %d, threads %d, processes %d\n",
			r.Load[0], r.Load[1], r.Load[2], r.Running, r.Threads, r.Procs)
	}
	if s.cpu {
		fmt.Fprintf(tw, "  cpu\t%s busy\t%d cores\n", pct(r.CPU), len(r.Cores))
	}
	if s.cores {
		for i, c := range r.Cores {
			fmt.Fprintf(tw, "  cpu%d\t%s busy\tuser %s system %s iowait %s idle %s\tticks user %d nice %d system %d idle %d iowait %d irq %d softirq %d steal %d\n",
				i, pct(c.Busy), pct(c.User), pct(c.System), pct(c.IOWait), pct(c.Idle),
				c.Ticks.User, c.Ticks.Nice, c.Ticks.System, c.Ticks.Idle, c.Ticks.IOWait, c.Ticks.IRQ, c.Ticks.SoftIRQ, c.Ticks.Steal)
		}
	}
	if s.mem {
		m := r.Mem
		fmt.Fprintf(tw, "  memory\t%s used of %s\tfree %s, available %s, buffers %s, cached %s\n",
			human(m.Used), human(m.Total), human(m.Free), human(m.Available), human(m.Buffers), human(m.Cached))
		fmt.Fprintf(tw, "  swap\t%s used of %s\tfree %s\n", human(m.SwapTotal-min(m.SwapFree, m.SwapTotal)),
			human(m.SwapTotal), human(m.SwapFree))
	}
	if s.disk {
		d := r.Root
		fmt.Fprintf(tw, "  rootfs\t%s used of %s\tfree %s, available %s\n",
			human(d.Total-min(d.Free, d.Total)), human(d.Total), human(d.Free), human(d.Avail))
	}
	if s.net {
		for _, f := range r.Net {
			fmt.Fprintf(tw, "  net %s\trx %s %d pkts %d errs %d drop\ttx %s %d pkts %d errs %d drop\t%s\n",
				f.Name, human(f.RxBytes), f.RxPackets, f.RxErrs, f.RxDrop,
				human(f.TxBytes), f.TxPackets, f.TxErrs, f.TxDrop, rates(r, f))
		}
	}
}

func rates(r stats.Report, f stats.Net) string {
	if !r.HaveRates {
		return ""
	}
	return fmt.Sprintf("rx %s/s tx %s/s", human(uint64(f.RxBps)), human(uint64(f.TxBps)))
}

func ratio(a, b uint64) float64 {
	if b == 0 {
		return -1
	}
	return 100 * float64(a) / float64(b)
}

// pct prints a percentage, "-" when unknown (negative).
func pct(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", v)
}

// human prints a byte count in binary units: 512B, 1.5K, 2.0G.
func human(n uint64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f%c", v, units[i])
}

// duration prints seconds as 3d4h5m, 4h5m or 5m6s.
func duration(secs float64) string {
	if !(secs >= 0 && secs < 100*365*86400) { // a sender's nonsense (2^64-1 ms): no wrap to 0s
		return "?"
	}
	d := time.Duration(secs) * time.Second
	days := int(d / (24 * time.Hour))
	d -= time.Duration(days) * 24 * time.Hour
	h, m, s := int(d/time.Hour), int(d/time.Minute)%60, int(d/time.Second)%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh%dm", days, h, m)
	case h > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	}
	return strings.TrimPrefix(fmt.Sprintf("%dm%ds", m, s), "0m")
}
