package dashboard

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"

	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/stats"
)

// userHZ is the kernel's USER_HZ, the unit of /proc/stat: 100 on every
// Linux architecture beo runs on.
const userHZ = 100

// metrics writes the Prometheus text exposition format (version 0.0.4).
// Every node has beo_node_state (one series per state, 1 for the current
// one); nodes with fresh stats (not stale) have the rest; with a job
// source, every node has beo_node_jobs_running, and each running job its
// beo_job_ series (jobs.go). A family's series are written together
// under its HELP and TYPE lines.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	all := s.cfg.Table.All()
	var fresh []stats.Status
	for _, nd := range all {
		if st, ok := s.cfg.Stats.Status(nd.Num); ok && !st.Stale {
			fresh = append(fresh, st)
		}
	}
	m := metricWriter{w: bw}

	m.family("beo_node_state", "gauge", "Node state: 1 for the state the node is in (secondary: up under another master).")
	states := nodes.StateNames()
	for _, nd := range all {
		for _, name := range states {
			v := 0.0
			if nd.State.String() == name {
				v = 1
			}
			m.sample("beo_node_state", v, "node", itoa(nd.Num), "state", name)
		}
	}
	m.family("beo_node_secondary", "gauge", "1 if the node's primary master is another one.")
	for _, nd := range all {
		m.sample("beo_node_secondary", b2f(nd.Secondary), "node", itoa(nd.Num))
	}
	c := s.cfg.Stats.Counters()
	m.family("beo_stats_samples_total", "counter", "Stats samples stored by recvstats.")
	m.sample("beo_stats_samples_total", float64(c.Samples))
	m.family("beo_stats_rejected_total", "counter", "Stats datagrams rejected by recvstats, by reason.")
	for _, reason := range stats.RejectReasons() {
		m.sample("beo_stats_rejected_total", float64(c.Rejected[reason]), "reason", reason)
	}

	gauge := func(name, help string, val func(st *stats.Status) float64) {
		m.family(name, "gauge", help)
		for i := range fresh {
			m.sample(name, val(&fresh[i]), "node", itoa(fresh[i].Node))
		}
	}
	gauge("beo_node_last_sample_timestamp_seconds", "When recvstats received the node's latest sample.",
		func(st *stats.Status) float64 { return float64(st.Last.UnixMilli()) / 1000 })
	gauge("beo_node_uptime_seconds", "Node uptime.", func(st *stats.Status) float64 { return st.Report.Uptime })
	for i, name := range []string{"beo_node_load1", "beo_node_load5", "beo_node_load15"} {
		gauge(name, "Load average.", func(st *stats.Status) float64 { return st.Report.Load[i] })
	}
	gauge("beo_node_procs", "Processes on the node.", func(st *stats.Status) float64 { return float64(st.Report.Procs) })
	gauge("beo_node_threads", "Threads (kernel scheduling entities) on the node.",
		func(st *stats.Status) float64 { return float64(st.Report.Threads) })
	gauge("beo_node_cpus", "CPUs on the node.", func(st *stats.Status) float64 { return float64(len(st.Report.Cores)) })
	mem := []struct {
		name, help string
		val        func(m *stats.Mem) uint64
	}{
		{"beo_node_memory_total_bytes", "MemTotal.", func(m *stats.Mem) uint64 { return m.Total }},
		{"beo_node_memory_free_bytes", "MemFree.", func(m *stats.Mem) uint64 { return m.Free }},
		{"beo_node_memory_available_bytes", "MemAvailable.", func(m *stats.Mem) uint64 { return m.Available }},
		{"beo_node_memory_buffers_bytes", "Buffers.", func(m *stats.Mem) uint64 { return m.Buffers }},
		{"beo_node_memory_cached_bytes", "Cached.", func(m *stats.Mem) uint64 { return m.Cached }},
		{"beo_node_swap_total_bytes", "SwapTotal.", func(m *stats.Mem) uint64 { return m.SwapTotal }},
		{"beo_node_swap_free_bytes", "SwapFree.", func(m *stats.Mem) uint64 { return m.SwapFree }},
	}
	for _, f := range mem {
		gauge(f.name, f.help, func(st *stats.Status) float64 { return float64(f.val(&st.Report.Mem)) })
	}
	gauge("beo_node_rootfs_size_bytes", "Root file system size.",
		func(st *stats.Status) float64 { return float64(st.Report.Root.Total) })
	gauge("beo_node_rootfs_free_bytes", "Root file system free bytes.",
		func(st *stats.Status) float64 { return float64(st.Report.Root.Free) })
	gauge("beo_node_rootfs_avail_bytes", "Root file system bytes available to users.",
		func(st *stats.Status) float64 { return float64(st.Report.Root.Avail) })

	m.family("beo_node_cpu_seconds_total", "counter", "CPU time of all cores, by mode.")
	for i := range fresh {
		var sum stats.CPU
		for _, c := range fresh[i].Report.Cores {
			t := c.Ticks
			sum.User += t.User
			sum.Nice += t.Nice
			sum.System += t.System
			sum.Idle += t.Idle
			sum.IOWait += t.IOWait
			sum.IRQ += t.IRQ
			sum.SoftIRQ += t.SoftIRQ
			sum.Steal += t.Steal
		}
		node := itoa(fresh[i].Node)
		for _, mode := range []struct {
			name string
			v    uint64
		}{{"user", sum.User}, {"nice", sum.Nice}, {"system", sum.System}, {"idle", sum.Idle},
			{"iowait", sum.IOWait}, {"irq", sum.IRQ}, {"softirq", sum.SoftIRQ}, {"steal", sum.Steal}} {
			m.sample("beo_node_cpu_seconds_total", float64(mode.v)/userHZ, "node", node, "mode", mode.name)
		}
	}
	netc := []struct {
		name, help string
		val        func(n *stats.Net) uint64
	}{
		{"beo_node_network_receive_bytes_total", "Bytes received.", func(n *stats.Net) uint64 { return n.RxBytes }},
		{"beo_node_network_receive_packets_total", "Packets received.", func(n *stats.Net) uint64 { return n.RxPackets }},
		{"beo_node_network_receive_errs_total", "Receive errors.", func(n *stats.Net) uint64 { return n.RxErrs }},
		{"beo_node_network_receive_drop_total", "Received packets dropped.", func(n *stats.Net) uint64 { return n.RxDrop }},
		{"beo_node_network_transmit_bytes_total", "Bytes sent.", func(n *stats.Net) uint64 { return n.TxBytes }},
		{"beo_node_network_transmit_packets_total", "Packets sent.", func(n *stats.Net) uint64 { return n.TxPackets }},
		{"beo_node_network_transmit_errs_total", "Transmit errors.", func(n *stats.Net) uint64 { return n.TxErrs }},
		{"beo_node_network_transmit_drop_total", "Sent packets dropped.", func(n *stats.Net) uint64 { return n.TxDrop }},
	}
	for _, f := range netc {
		m.family(f.name, "counter", f.help)
		for i := range fresh {
			for j := range fresh[i].Report.Net {
				n := &fresh[i].Report.Net[j]
				m.sample(f.name, float64(f.val(n)), "node", itoa(fresh[i].Node), "iface", n.Name)
			}
		}
	}
	nums := make([]int, len(all))
	for i, nd := range all {
		nums[i] = nd.Num
	}
	s.jobMetrics(m, nums)
}

// metricWriter writes exposition-format lines.
type metricWriter struct{ w *bufio.Writer }

func (m metricWriter) family(name, typ, help string) {
	m.w.WriteString("# HELP " + name + " " + escapeHelp(help) + "\n")
	m.w.WriteString("# TYPE " + name + " " + typ + "\n")
}

// sample writes `name{k="v",…} value`; labels come as key, value pairs.
func (m metricWriter) sample(name string, v float64, labels ...string) {
	m.w.WriteString(name)
	for i := 0; i+1 < len(labels); i += 2 {
		if i == 0 {
			m.w.WriteByte('{')
		} else {
			m.w.WriteByte(',')
		}
		m.w.WriteString(labels[i] + `="` + escapeLabel(labels[i+1]) + `"`)
	}
	if len(labels) > 0 {
		m.w.WriteByte('}')
	}
	m.w.WriteByte(' ')
	m.w.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	m.w.WriteByte('\n')
}

// escapeLabel escapes a label value: backslash, double quote, newline.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// escapeHelp escapes HELP text: backslash and newline.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

func itoa(n int) string { return strconv.Itoa(n) }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
