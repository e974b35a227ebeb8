// Package dashboard is beostatus: the master's read-only HTTP face for
// monitoring. It joins the node table (states, from bpmaster and recvstats)
// with the stats receiver's latest samples and serves them four ways:
//
//	GET /              the live dashboard: one tile per node with state,
//	                   load, CPU, memory and network, coloured by state,
//	                   updated in place from /api/events (no reload)
//	GET /api/stats     JSON Snapshot: every node, its state and derived
//	                   stats (stats.Status); ?node=SPEC limits it to a node
//	                   spec (pkg/nodespec: 3, 0-4, allup, …). beostat reads it.
//	GET /api/events    Server-Sent Events: "snapshot" with every Tile, then
//	                   "update" with the Tiles that changed — a state change
//	                   or a new sample — coalesced over Coalesce (100 ms),
//	                   and a ": ping" comment every 15 s
//	GET /api/jobs      JSON JobsDoc: the running jobs with their usage,
//	                   the latest finished ones and per-node totals
//	                   (pkg/acct, from the master: Config.Jobs);
//	                   ?node=SPEC as above. beostat -j and -J read it.
//	GET /metrics       Prometheus text exposition format 0.0.4
//
// Every other method gets 405 (GET patterns also answer HEAD): nothing
// here changes anything. A request whose Host is a dotted name other
// than this machine's gets 403, against DNS rebinding (Hosts). The listener
// is the caller's: `beo master` serves it on its beostatus address
// (127.0.0.1:5546 by default, see applets/recvstats).
//
// Live updates use SSE rather than a websocket: one direction suffices,
// the standard library serves it, browsers reconnect by themselves, and
// it passes through HTTP proxies unchanged.
//
// /metrics is written here rather than with prometheus/client_golang: the
// values are a snapshot computed at scrape time (a custom Collector would
// be needed anyway), the format is a few dozen lines of text, and
// client_golang would pull its registry, protobuf and the runtime
// collectors into a binary that compute nodes boot. The tests check the
// output with prometheus/common's own parser.
package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/nodespec"
	"github.com/beo-cluster/beo/pkg/stats"
)

// DefaultAddr is where `beo master` serves the dashboard unless told
// otherwise: loopback only, since it shows the whole cluster to anyone
// who can reach it.
const DefaultAddr = "127.0.0.1:5546"

// Config is what a Server shows.
type Config struct {
	Table *nodes.Table    // required
	Stats *stats.Receiver // required
	// Jobs is the master's job accounting; nil (recvstats alone): no
	// jobs. MaxJobSeries bounds the jobs /metrics has series for
	// (DefaultMaxJobSeries).
	Jobs         JobSource
	MaxJobSeries int
	Log          *slog.Logger
	Clock        func() time.Time
	// Coalesce is how long /api/events gathers changes before sending
	// them (default 100 ms).
	Coalesce time.Duration
	// Hosts are dotted names requests may carry in Host besides this
	// machine's host name (see Hosts).
	Hosts []string
}

// Server serves the dashboard, the JSON API and /metrics.
type Server struct {
	cfg   Config
	mux   *http.ServeMux
	hosts Hosts
}

// New returns a Server; mount it with http.Serve(ln, s).
func New(cfg Config) (*Server, error) {
	if cfg.Table == nil || cfg.Stats == nil {
		return nil, fmt.Errorf("dashboard: need a node table and a stats receiver")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Coalesce <= 0 {
		cfg.Coalesce = 100 * time.Millisecond
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.hosts = NewHosts(cfg.Hosts...)
	s.mux.HandleFunc("GET /{$}", s.page)
	s.mux.HandleFunc("GET /api/stats", s.apiStats)
	s.mux.HandleFunc("GET /api/jobs", s.apiJobs)
	s.mux.HandleFunc("GET /api/events", s.events)
	s.mux.HandleFunc("GET /metrics", s.metrics)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !s.hosts.Allowed(r.Host) {
		Refuse(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Hosts guards against DNS rebinding: a web page the head node's
// browser loads from a domain its author controls can point that
// domain at 127.0.0.1 and read a loopback dashboard — every node, the
// jobs of every user — as its own origin. Such a page's requests carry
// its domain in Host, so the dashboard (and beostatus, which relays it)
// answers only names no outsider decides the address of: an address
// (any; CORS keeps a foreign origin from reading one), no Host
// (HTTP/1.0), localhost and *.localhost, a name without a dot (resolved
// by /etc/hosts or the site's search domain: "master", "head"), this
// machine's host name, and the names listed.
type Hosts []string

// NewHosts returns the host name and extra, lower case, without a
// trailing dot.
func NewHosts(extra ...string) Hosts {
	var h Hosts
	if name, err := os.Hostname(); err == nil {
		extra = append(extra, name)
	}
	for _, n := range extra {
		h = append(h, strings.TrimSuffix(strings.ToLower(n), "."))
	}
	return h
}

// Allowed reports whether a request with Host hostport may be answered.
func (h Hosts) Allowed(hostport string) bool {
	host := hostport
	if name, _, err := net.SplitHostPort(hostport); err == nil {
		host = name
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if host == "" || !strings.Contains(host, ".") || strings.HasSuffix(host, ".localhost") {
		return true
	}
	return slices.Contains(h, host)
}

// Refuse answers 403 for a request Allowed refused.
func Refuse(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "beostatus: refused Host "+strconv.Quote(r.Host)+": reach the dashboard by address, localhost, a name without a dot or this machine's host name", http.StatusForbidden)
}

// Serve serves HTTP on ln until ctx ends, then closes it; open event
// streams end with it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	stop := context.AfterFunc(ctx, func() { hs.Close() })
	defer stop()
	err := hs.Serve(ln)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("beostatus: %w", err)
}

// Snapshot is the /api/stats document.
type Snapshot struct {
	Time     time.Time         `json:"time"`
	Count    int               `json:"count"` // nodes in the table, numbered 0…Count-1
	Nodes    []Node            `json:"nodes"`
	Samples  uint64            `json:"samples"`  // stored since recvstats started
	Rejected map[string]uint64 `json:"rejected"` // by reason
}

// Node is one node in a Snapshot.
type Node struct {
	Node  int           `json:"node"`
	State string        `json:"state"` // as bpstat shows it: "[up]" for another master's
	Addr  string        `json:"addr,omitempty"`
	Since time.Time     `json:"since"`
	Stats *stats.Status `json:"stats,omitempty"` // nil: never sent stats
}

// snapshot builds the Snapshot of the nodes in sel (nil = all).
func (s *Server) snapshot(sel []int) Snapshot {
	all := s.cfg.Table.All()
	c := s.cfg.Stats.Counters()
	snap := Snapshot{Time: s.cfg.Clock(), Count: len(all), Samples: c.Samples, Rejected: c.Rejected,
		Nodes: []Node{}}
	add := func(nd nodes.Node) {
		n := Node{Node: nd.Num, State: nd.Display(), Since: nd.Since}
		if nd.Addr.IsValid() {
			n.Addr = nd.Addr.String()
		}
		if st, ok := s.cfg.Stats.Status(nd.Num); ok {
			n.Stats = &st
		}
		snap.Nodes = append(snap.Nodes, n)
	}
	if sel == nil {
		for _, nd := range all {
			add(nd)
		}
		return snap
	}
	seen := map[int]bool{}
	for _, n := range sel {
		if n >= 0 && n < len(all) && !seen[n] {
			seen[n] = true
			add(all[n])
		}
	}
	return snap
}

// cluster adapts the table to nodespec.Cluster.
type cluster []nodes.Node

func (c cluster) Count() int            { return len(c) }
func (c cluster) State(n int) string    { return c[n].Display() }
func (c cluster) KnownStates() []string { return nodes.StateNames() }

func (s *Server) apiStats(w http.ResponseWriter, r *http.Request) {
	var sel []int
	if spec := r.URL.Query().Get("node"); spec != "" {
		var err error
		sel, err = nodespec.Parse(spec, cluster(s.cfg.Table.All()))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if sel == nil {
			sel = []int{}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	if err := enc.Encode(s.snapshot(sel)); err != nil {
		s.cfg.Log.Debug("api/stats: write", "err", err)
	}
}

// Tile is what one dashboard tile shows; /api/events sends these.
type Tile struct {
	Node     int        `json:"node"`
	State    string     `json:"state"`
	Addr     string     `json:"addr,omitempty"`
	HasStats bool       `json:"has_stats"`
	Stale    bool       `json:"stale,omitempty"`
	Load     [3]float64 `json:"load"`
	CPU      float64    `json:"cpu_pct"` // -1 unknown
	Cores    int        `json:"cores"`
	MemUsed  uint64     `json:"mem_used"`
	MemTotal uint64     `json:"mem_total"`
	RxBps    float64    `json:"rx_bps"` // all interfaces but loopback
	TxBps    float64    `json:"tx_bps"`
	Procs    uint64     `json:"procs"`
	Uptime   float64    `json:"uptime_s"`
}

func (s *Server) tile(nd nodes.Node) Tile {
	t := Tile{Node: nd.Num, State: nd.Display(), CPU: -1}
	if nd.Addr.IsValid() {
		t.Addr = nd.Addr.String()
	}
	st, ok := s.cfg.Stats.Status(nd.Num)
	if !ok {
		return t
	}
	rep := st.Report
	t.HasStats, t.Stale = true, st.Stale
	t.Load, t.CPU, t.Cores = rep.Load, rep.CPU, len(rep.Cores)
	t.MemUsed, t.MemTotal = rep.Mem.Used, rep.Mem.Total
	t.Procs, t.Uptime = rep.Procs, rep.Uptime
	for _, n := range rep.Net {
		if n.Name != "lo" {
			t.RxBps += n.RxBps
			t.TxBps += n.TxBps
		}
	}
	return t
}
