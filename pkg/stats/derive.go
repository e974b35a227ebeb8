package stats

// Report is what beostat and the dashboard show of a node: the latest
// sample in readable units, with CPU use and network rates derived from the
// sample before it. Rates are absent (CPU -1, HaveRates false) for a
// node's first sample and after its counters went backwards (a reboot).
type Report struct {
	Seq       uint64     `json:"seq"`
	Interval  float64    `json:"interval_s"`
	Uptime    float64    `json:"uptime_s"`
	Load      [3]float64 `json:"load"`
	Running   uint64     `json:"running"`
	Threads   uint64     `json:"threads"`
	Procs     uint64     `json:"procs"`
	HaveRates bool       `json:"have_rates"`
	CPU       float64    `json:"cpu_pct"` // all cores busy %, -1 = unknown
	Cores     []Core     `json:"cores"`
	Mem       Mem        `json:"mem"`
	Root      Disk       `json:"rootfs"`
	Net       []Net      `json:"net"`
}

// Core is one CPU's use since the previous sample, in percent (-1 when
// unknown), and its cumulative ticks.
type Core struct {
	Busy   float64 `json:"busy_pct"`
	User   float64 `json:"user_pct"`
	System float64 `json:"system_pct"`
	IOWait float64 `json:"iowait_pct"`
	Idle   float64 `json:"idle_pct"`
	Ticks  CPU     `json:"ticks"`
}

// Mem is memory and swap in bytes. Used is Total - Available.
type Mem struct {
	Total     uint64 `json:"total"`
	Free      uint64 `json:"free"`
	Available uint64 `json:"available"`
	Used      uint64 `json:"used"`
	Buffers   uint64 `json:"buffers"`
	Cached    uint64 `json:"cached"`
	SwapTotal uint64 `json:"swap_total"`
	SwapFree  uint64 `json:"swap_free"`
}

// Disk is the root file system's size, free and available bytes.
type Disk struct {
	Total uint64 `json:"total"`
	Free  uint64 `json:"free"`
	Avail uint64 `json:"avail"`
}

// Net is one interface: cumulative counters and, when known, rates per
// second.
type Net struct {
	Name      string  `json:"name"`
	RxBytes   uint64  `json:"rx_bytes"`
	RxPackets uint64  `json:"rx_packets"`
	RxErrs    uint64  `json:"rx_errs"`
	RxDrop    uint64  `json:"rx_drop"`
	TxBytes   uint64  `json:"tx_bytes"`
	TxPackets uint64  `json:"tx_packets"`
	TxErrs    uint64  `json:"tx_errs"`
	TxDrop    uint64  `json:"tx_drop"`
	RxBps     float64 `json:"rx_bytes_per_s"`
	TxBps     float64 `json:"tx_bytes_per_s"`
	RxPps     float64 `json:"rx_packets_per_s"`
	TxPps     float64 `json:"tx_packets_per_s"`
}

// Derive makes the Report of cur; prev, the same node's sample before it,
// may be nil.
func Derive(prev, cur *Sample) Report {
	r := Report{
		Seq:      cur.Seq,
		Interval: float64(cur.IntervalMS) / 1000,
		Uptime:   float64(cur.UptimeMS) / 1000,
		Load:     [3]float64{float64(cur.Load1) / 100, float64(cur.Load5) / 100, float64(cur.Load15) / 100},
		Running:  cur.Running,
		Threads:  cur.Threads,
		Procs:    cur.Procs,
		CPU:      -1,
		Mem: Mem{Total: cur.MemTotal, Free: cur.MemFree, Available: cur.MemAvailable,
			Used: cur.MemTotal - min(cur.MemAvailable, cur.MemTotal), Buffers: cur.Buffers, Cached: cur.Cached,
			SwapTotal: cur.SwapTotal, SwapFree: cur.SwapFree},
		Root: Disk{Total: cur.RootTotal, Free: cur.RootFree, Avail: cur.RootAvail},
	}
	rates := prev != nil && cur.UptimeMS > prev.UptimeMS && len(prev.CPUs) == len(cur.CPUs)
	r.Cores = make([]Core, len(cur.CPUs))
	var busy, total uint64
	for i, c := range cur.CPUs {
		r.Cores[i] = Core{Busy: -1, User: -1, System: -1, IOWait: -1, Idle: -1, Ticks: c}
		if !rates {
			continue
		}
		p := prev.CPUs[i]
		dt := c.Total() - p.Total()
		if c.Total() < p.Total() || c.Busy() < p.Busy() || c.User < p.User || c.System < p.System ||
			c.Idle < p.Idle || c.IOWait < p.IOWait {
			rates = false
			continue
		}
		busy += c.Busy() - p.Busy()
		total += dt
		if dt == 0 {
			r.Cores[i] = Core{Ticks: c, Idle: 100}
			continue
		}
		pct := func(a, b uint64) float64 { return 100 * float64(a-b) / float64(dt) }
		r.Cores[i] = Core{Busy: pct(c.Busy(), p.Busy()), User: pct(c.User+c.Nice, p.User+p.Nice),
			System: pct(c.System+c.IRQ+c.SoftIRQ, p.System+p.IRQ+p.SoftIRQ),
			IOWait: pct(c.IOWait, p.IOWait), Idle: pct(c.Idle, p.Idle), Ticks: c}
	}
	if rates {
		r.HaveRates = true
		r.CPU = 0
		if total > 0 {
			r.CPU = 100 * float64(busy) / float64(total)
		}
	} else {
		for i := range r.Cores {
			r.Cores[i] = Core{Busy: -1, User: -1, System: -1, IOWait: -1, Idle: -1, Ticks: cur.CPUs[i]}
		}
	}
	r.Net = make([]Net, len(cur.Ifaces))
	secs := 0.0
	if r.HaveRates {
		secs = float64(cur.UptimeMS-prev.UptimeMS) / 1000
	}
	for i, f := range cur.Ifaces {
		n := Net{Name: f.Name, RxBytes: f.RxBytes, RxPackets: f.RxPackets, RxErrs: f.RxErrs, RxDrop: f.RxDrop,
			TxBytes: f.TxBytes, TxPackets: f.TxPackets, TxErrs: f.TxErrs, TxDrop: f.TxDrop}
		if secs > 0 {
			if p := findIface(prev.Ifaces, f.Name, i); p != nil {
				n.RxBps = rate(p.RxBytes, f.RxBytes, secs)
				n.TxBps = rate(p.TxBytes, f.TxBytes, secs)
				n.RxPps = rate(p.RxPackets, f.RxPackets, secs)
				n.TxPps = rate(p.TxPackets, f.TxPackets, secs)
			}
		}
		r.Net[i] = n
	}
	return r
}

// findIface finds name in ifs, trying index hint first.
func findIface(ifs []Iface, name string, hint int) *Iface {
	if hint < len(ifs) && ifs[hint].Name == name {
		return &ifs[hint]
	}
	for i := range ifs {
		if ifs[i].Name == name {
			return &ifs[i]
		}
	}
	return nil
}

// rate is (b-a)/secs, 0 when the counter went backwards.
func rate(a, b uint64, secs float64) float64 {
	if b < a {
		return 0
	}
	return float64(b-a) / secs
}
