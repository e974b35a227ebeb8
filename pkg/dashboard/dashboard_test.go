package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/stats"
)

type fixture struct {
	tab *nodes.Table
	rcv *stats.Receiver
	srv *httptest.Server
}

func addr(n int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(100 + n)}) }

// newFixture makes a 3-node cluster (10.0.0.100 + N): node 0 up, node 1 a
// non-Scyld host that sends stats, node 2 down.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureJobs(t, nil)
}

// newFixtureJobs is newFixture with a job source.
func newFixtureJobs(t *testing.T, jobs JobSource) *fixture {
	t.Helper()
	var ns []nodes.Node
	for n := range 3 {
		ns = append(ns, nodes.Node{Num: n, Addr: addr(n)})
	}
	tab := nodes.New(nil, ns...)
	resolve := func(a netip.Addr) (int, bool) {
		for n := range 3 {
			if a == addr(n) {
				return n, true
			}
		}
		return 0, false
	}
	rcv, err := stats.NewReceiver(stats.Config{Resolve: resolve, Table: tab})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Table: tab, Stats: rcv, Jobs: jobs, MaxJobSeries: 2, Coalesce: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []nodes.State{nodes.Boot, nodes.Up} {
		if err := tab.SetState(nodes.System, 0, s); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{tab: tab, rcv: rcv, srv: httptest.NewServer(d)}
	t.Cleanup(f.srv.Close)
	f.send(t, 1, 1)
	return f
}

// send stores a sample from node n with the given sequence number.
func (f *fixture) send(t *testing.T, n int, seq uint64) {
	t.Helper()
	s := stats.Sample{Claim: -1, Seq: seq, IntervalMS: 60000, UptimeMS: 1000 * seq, Load1: 150,
		MemTotal: 4 << 30, MemAvailable: 1 << 30, RootTotal: 10 << 30,
		CPUs:   []stats.CPU{{User: 100 * seq, Idle: 300 * seq}, {User: 10 * seq, Idle: 390 * seq}},
		Ifaces: []stats.Iface{{Name: "lo", RxBytes: 5}, {Name: `we"ird\`, RxBytes: 2048 * seq, TxPackets: seq}}}
	b, err := s.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.rcv.Ingest(addr(n), b); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return resp, b.String()
}

func TestAPIStats(t *testing.T) {
	f := newFixture(t)
	f.send(t, 1, 2)
	tests := []struct {
		query      string
		wantNodes  []int
		wantStates []string
	}{
		{"", []int{0, 1, 2}, []string{"up", "alive", "down"}},
		{"?node=1", []int{1}, []string{"alive"}},
		{"?node=allalive,0", []int{1, 0}, []string{"alive", "up"}},
		{"?node=allboot", []int{}, []string{}},
	}
	for _, tt := range tests {
		snap, err := Fetch(context.Background(), nil, f.srv.URL, strings.TrimPrefix(tt.query, "?node="))
		if err != nil {
			t.Fatalf("%q: %v", tt.query, err)
		}
		var got []int
		var states []string
		for _, n := range snap.Nodes {
			got = append(got, n.Node)
			states = append(states, n.State)
		}
		if strings.Join(states, ",") != strings.Join(tt.wantStates, ",") || len(got) != len(tt.wantNodes) {
			t.Errorf("%q: nodes %v %v, want %v %v", tt.query, got, states, tt.wantNodes, tt.wantStates)
		}
		if snap.Count != 3 {
			t.Errorf("%q: count %d, want 3", tt.query, snap.Count)
		}
		for _, n := range snap.Nodes {
			if (n.Stats != nil) != (n.Node == 1) {
				t.Errorf("%q: node %d has stats %v, want only node 1", tt.query, n.Node, n.Stats != nil)
			}
			if n.Node == 1 && (n.Stats.Report.CPU != 13.75 || n.Stats.Report.Mem.Used != 3<<30 || n.Addr != "10.0.0.101") {
				t.Errorf("%q: node 1 cpu %v mem used %d addr %s, want 13.75%% 3GiB 10.0.0.101", tt.query,
					n.Stats.Report.CPU, n.Stats.Report.Mem.Used, n.Addr)
			}
		}
	}
	if snap, _ := Fetch(context.Background(), nil, f.srv.URL, ""); snap.Samples != 2 {
		t.Errorf("samples = %d, want 2", snap.Samples)
	}
	_, err := Fetch(context.Background(), nil, f.srv.URL, "7")
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "no such node") {
		t.Errorf("Fetch node 7: %v, want 400 no such node", err)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, f.srv.URL+"/api/stats", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /api/stats: %s, want 405", m, resp.Status)
		}
	}
	if resp, body := f.get(t, "/"); resp.StatusCode != 200 || !strings.Contains(body, "EventSource") {
		t.Errorf("GET /: %s, page without EventSource", resp.Status)
	}
	if resp, _ := f.get(t, "/nope"); resp.StatusCode != 404 {
		t.Errorf("GET /nope: %s, want 404", resp.Status)
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	f.send(t, 1, 2)
	resp, body := f.get(t, "/metrics")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	fams, value := parseMetrics(t, body)
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"beo_node_state", map[string]string{"node": "0", "state": "up"}, 1},
		{"beo_node_state", map[string]string{"node": "0", "state": "down"}, 0},
		{"beo_node_state", map[string]string{"node": "1", "state": "alive"}, 1},
		{"beo_node_state", map[string]string{"node": "2", "state": "down"}, 1},
		{"beo_node_load1", map[string]string{"node": "1"}, 1.5},
		{"beo_node_cpus", map[string]string{"node": "1"}, 2},
		{"beo_node_memory_available_bytes", map[string]string{"node": "1"}, 1 << 30},
		{"beo_node_cpu_seconds_total", map[string]string{"node": "1", "mode": "user"}, 2.2},
		{"beo_node_network_receive_bytes_total", map[string]string{"node": "1", "iface": `we"ird\`}, 4096},
		{"beo_node_network_transmit_packets_total", map[string]string{"node": "1", "iface": `we"ird\`}, 2},
		{"beo_stats_samples_total", nil, 2},
		{"beo_stats_rejected_total", map[string]string{"reason": "malformed"}, 0},
	}
	for _, tt := range tests {
		got, ok := value(tt.name, tt.labels)
		if !ok || got != tt.want {
			t.Errorf("%s%v = %v (found %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}
	if _, ok := value("beo_node_load1", map[string]string{"node": "0"}); ok {
		t.Error("node 0 (no stats) has beo_node_load1")
	}
	if n := fams["beo_node_state"]; n != 3*len(nodes.StateNames()) {
		t.Errorf("beo_node_state has %d series, want %d", n, 3*len(nodes.StateNames()))
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, label, help string }{
		{`plain`, `plain`, `plain`},
		{`a"b`, `a\"b`, `a"b`},
		{`a\b`, `a\\b`, `a\\b`},
		{"a\nb", `a\nb`, `a\nb`},
	}
	for _, tt := range tests {
		if got := escapeLabel(tt.in); got != tt.label {
			t.Errorf("escapeLabel(%q) = %q, want %q", tt.in, got, tt.label)
		}
		if got := escapeHelp(tt.in); got != tt.help {
			t.Errorf("escapeHelp(%q) = %q, want %q", tt.in, got, tt.help)
		}
	}
}

type sseEvent struct {
	name string
	ev   Event
}

func openEvents(t *testing.T, url string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	out := make(chan sseEvent, 100)
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(func() { cancel(); resp.Body.Close(); wg.Wait() })
	go func() {
		defer wg.Done()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var name string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				var ev Event
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
					t.Errorf("event %s: %v", name, err)
					return
				}
				out <- sseEvent{name, ev}
			}
		}
	}()
	return out
}

func next(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case e, ok := <-events:
		if !ok {
			t.Fatal("event stream ended")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return sseEvent{}
}

func TestEvents(t *testing.T) {
	f := newFixture(t)
	events := openEvents(t, f.srv.URL)
	e := next(t, events)
	if e.name != "snapshot" || e.ev.Count != 3 || len(e.ev.Tiles) != 3 {
		t.Fatalf("first event %s count %d tiles %d, want snapshot of 3", e.name, e.ev.Count, len(e.ev.Tiles))
	}
	if tl := e.ev.Tiles[1]; tl.State != "alive" || !tl.HasStats || tl.Load[0] != 1.5 || e.ev.Tiles[2].HasStats {
		t.Errorf("snapshot tiles %+v", e.ev.Tiles)
	}

	if err := f.tab.SetState(nodes.Admin, 0, nodes.Unavailable); err != nil {
		t.Fatal(err)
	}
	e = next(t, events)
	if e.name != "update" || len(e.ev.Tiles) != 1 || e.ev.Tiles[0].Node != 0 || e.ev.Tiles[0].State != "unavailable" {
		t.Errorf("after state change: %s %+v, want update of node 0 unavailable", e.name, e.ev.Tiles)
	}

	f.send(t, 1, 2)
	e = next(t, events)
	if e.name != "update" || len(e.ev.Tiles) != 1 || e.ev.Tiles[0].Node != 1 || e.ev.Tiles[0].CPU != 13.75 {
		t.Errorf("after a sample: %s %+v, want update of node 1 with cpu 13.75%%", e.name, e.ev.Tiles)
	}

	f.tab.Reconfigure(nodes.Node{Num: 0, Addr: addr(0)}, nodes.Node{Num: 1, Addr: addr(1)})
	e = next(t, events)
	if e.name != "update" || e.ev.Count != 2 {
		t.Errorf("after removing node 2: %s count %d, want update with count 2", e.name, e.ev.Count)
	}
}

func TestNewNeedsSources(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without table and receiver: nil error")
	}
}

// parseMetrics parses an exposition with Prometheus' own parser and
// returns the number of series of each family and a lookup of one
// sample by (some) labels.
func parseMetrics(t *testing.T, body string) (map[string]int, func(string, map[string]string) (float64, bool)) {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, body)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		fam := fams[name]
		if fam == nil {
			return 0, false
		}
	next:
		for _, m := range fam.Metric {
			got := map[string]string{}
			for _, l := range m.Label {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Untyped != nil:
				return m.Untyped.GetValue(), true
			}
		}
		return 0, false
	}
	series := map[string]int{}
	for name, f := range fams {
		series[name] = len(f.Metric)
	}
	return series, value
}

// TestRebindingGuard: a page that points its own domain at the
// dashboard's address gets 403; addresses, localhost, dotless names,
// the host name and Config.Hosts get the dashboard.
func TestRebindingGuard(t *testing.T) {
	tab := nodes.New(nil, nodes.Node{Num: 0, Addr: addr(0)})
	rcv, err := stats.NewReceiver(stats.Config{Resolve: func(netip.Addr) (int, bool) { return 0, false }, Table: tab})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Table: tab, Stats: rcv, Hosts: []string{"Head.Example.ORG."}})
	if err != nil {
		t.Fatal(err)
	}
	hostname, _ := os.Hostname()
	for host, want := range map[string]int{
		"127.0.0.1:5546": 200, "[::1]:5546": 200, "10.54.0.1": 200, "": 200,
		"localhost:5546": 200, "LOCALHOST": 200, "beo.localhost:5546": 200, "master:5546": 200,
		hostname + ":5546": 200, "head.example.org": 200, "head.example.org.:5546": 200,
		"rebind.attacker.example:5546": 403, "127.0.0.1.nip.io": 403, "localhost.attacker.example": 403,
	} {
		for _, path := range []string{"/api/stats", "/api/jobs", "/metrics", "/"} {
			r := httptest.NewRequest("GET", path, nil)
			r.Host = host
			w := httptest.NewRecorder()
			d.ServeHTTP(w, r)
			if w.Code != want {
				t.Errorf("GET %s with Host %q: %d, want %d (%s)", path, host, w.Code, want, strings.TrimSpace(w.Body.String()))
			}
		}
	}
}
