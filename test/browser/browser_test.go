// Package browser tests the beostatus dashboard in headless Chromium
// (Debian's chromium, /usr/bin/chromium), driven over the DevTools
// protocol with chromedp: the page shows every node, and a node's state
// change reaches the page without a reload — proven by the DOM (the
// tile's state and class change, the page's load token stays) and by a
// pixel diff of screenshots taken before and after. A second test keeps
// 1000 simulated nodes sending stats at 1 Hz and measures how long a state
// change takes to reach the page.
//
// The server is in-process (node table + stats receiver + dashboard on
// 127.0.0.1:0); nothing but loopback is used. Screenshots and DOM dumps
// go to $BEO_ARTIFACTS when set, else to the test's temp dir. Run as root,
// Chromium needs --no-sandbox, which the test passes. Skips when chromium
// is missing. The 1000-node measurement (~6 s) runs only under
// `make test-root` (BEO_BIN set) or with BEO_HEAVY=1, so `go test ./...`
// stays quick.
package browser

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/stats"
)

// cluster is an in-process master's monitoring half: n nodes at
// 10.0.X.Y = node number, fed through Ingest as if from their addresses.
type cluster struct {
	tab *nodes.Table
	rcv *stats.Receiver
	url string
}

func nodeAddr(n int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(n >> 8), byte(n)}) }

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	var ns []nodes.Node
	for i := range n {
		ns = append(ns, nodes.Node{Num: i, Addr: nodeAddr(i)})
	}
	tab := nodes.New(nil, ns...)
	rcv, err := stats.NewReceiver(stats.Config{Table: tab, Resolve: func(a netip.Addr) (int, bool) {
		b := a.As4()
		i := int(b[2])<<8 | int(b[3])
		return i, a.Is4() && b[0] == 10 && b[1] == 0 && i < n
	}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dashboard.New(dashboard.Config{Table: tab, Stats: rcv, Coalesce: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return &cluster{tab: tab, rcv: rcv, url: srv.URL + "/"}
}

// sample sends node n's seq-th sample: load and CPU grow with n.
func (c *cluster) sample(t testing.TB, n int, seq uint64) {
	s := stats.Sample{Claim: -1, Seq: seq, IntervalMS: 1000, UptimeMS: seq * 1000, Load1: uint64(n % 400),
		MemTotal: 4 << 30, MemAvailable: uint64(1+n%3) << 30,
		CPUs:   []stats.CPU{{User: seq * uint64(n%100), Idle: seq * uint64(100-n%100)}},
		Ifaces: []stats.Iface{{Name: "eth0", RxBytes: seq << 20, TxBytes: seq << 18}}}
	b, err := s.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.rcv.Ingest(nodeAddr(n), b); err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) set(t testing.TB, n int, states ...nodes.State) {
	t.Helper()
	for _, s := range states {
		a := nodes.System
		if s == nodes.Unavailable {
			a = nodes.Admin
		}
		if err := c.tab.SetState(a, n, s); err != nil {
			t.Fatal(err)
		}
	}
}

// browser starts headless Chromium; the returned context drives one tab.
func browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (Debian package chromium): skipping the dashboard browser test")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("force-device-scale-factor", "1"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	// Start the browser now, without a deadline (a deadline here would
	// bound the browser's whole life).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// within runs a on ctx with a deadline.
func within[T any](t *testing.T, ctx context.Context, d time.Duration, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func artifacts(t *testing.T) string {
	if d := os.Getenv("BEO_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err == nil {
			return d
		}
	}
	return t.TempDir()
}

type rect struct{ X, Y, W, H float64 }

func (r rect) image() image.Rectangle {
	return image.Rect(int(r.X)+1, int(r.Y)+1, int(r.X+r.W)-1, int(r.Y+r.H)-1)
}

// diff counts the pixels of area that differ between two screenshots.
func diff(t *testing.T, a, b []byte, area image.Rectangle) (changed, total int) {
	t.Helper()
	ia, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	ib, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	area = area.Intersect(ia.Bounds()).Intersect(ib.Bounds())
	for y := area.Min.Y; y < area.Max.Y; y++ {
		for x := area.Min.X; x < area.Max.X; x++ {
			total++
			if ia.At(x, y) != ib.At(x, y) {
				changed++
			}
		}
	}
	return changed, total
}

func TestStateChangeShowsWithoutReload(t *testing.T) {
	c := newCluster(t, 8)
	c.set(t, 0, nodes.Boot, nodes.Up)
	c.set(t, 1, nodes.Boot, nodes.Up)
	for n := 4; n < 8; n++ {
		c.sample(t, n, 1) // non-Scyld hosts: alive
		c.sample(t, n, 2)
	}
	ctx := browser(t, 1000, 700)
	dir := artifacts(t)

	within(t, ctx, 20*time.Second, "load page", chromedp.Navigate(c.url))
	within(t, ctx, 10*time.Second, "tiles rendered", chromedp.WaitVisible("#node-7.state-alive"))
	token := within(t, ctx, 5*time.Second, "load token", chromedp.Evaluate[string]("window.beoLoadID"))
	states := within(t, ctx, 5*time.Second, "states",
		chromedp.Evaluate[[]string](`[...document.querySelectorAll(".tile")].map(e => e.dataset.state)`))
	if want := []string{"up", "up", "down", "down", "alive", "alive", "alive", "alive"}; !slices.Equal(states, want) {
		t.Fatalf("tiles show %v, want %v", states, want)
	}
	box := within(t, ctx, 5*time.Second, "tile box", chromedp.Evaluate[rect](
		`(() => { const r = document.getElementById("node-2").getBoundingClientRect(); return {X: r.x, Y: r.y, W: r.width, H: r.height}; })()`))
	other := within(t, ctx, 5*time.Second, "tile box", chromedp.Evaluate[rect](
		`(() => { const r = document.getElementById("node-0").getBoundingClientRect(); return {X: r.x, Y: r.y, W: r.width, H: r.height}; })()`))
	before := within(t, ctx, 10*time.Second, "screenshot before", chromedp.CaptureScreenshot())
	domBefore := within(t, ctx, 5*time.Second, "DOM before", chromedp.OuterHTML("html"))

	// Node 2's bpslave connects and node_up succeeds: down → boot → up.
	c.set(t, 2, nodes.Boot, nodes.Up)
	within(t, ctx, 10*time.Second, "node 2 turns up on the page", chromedp.WaitVisible("#node-2.state-up"))

	after := within(t, ctx, 10*time.Second, "screenshot after", chromedp.CaptureScreenshot())
	domAfter := within(t, ctx, 5*time.Second, "DOM after", chromedp.OuterHTML("html"))
	for name, b := range map[string][]byte{"before.png": before, "after.png": after,
		"before.html": []byte(domBefore), "after.html": []byte(domAfter)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots and DOM in %s", dir)

	if got := within(t, ctx, 5*time.Second, "load token", chromedp.Evaluate[string]("window.beoLoadID")); got != token {
		t.Errorf("page load token %q became %q: the page reloaded", token, got)
	}
	if n := within(t, ctx, 5*time.Second, "updates", chromedp.Evaluate[int]("window.beoUpdates")); n < 2 {
		t.Errorf("page applied %d events, want the snapshot and at least one update", n)
	}
	summary := within(t, ctx, 5*time.Second, "summary", chromedp.Evaluate[string](
		`document.getElementById("summary").textContent`))
	if want := "alive: 4down: 1up: 3"; summary != want {
		t.Errorf("summary %q, want %q", summary, want)
	}
	for _, tt := range []struct{ dom, want string }{
		{domBefore, `<div id="node-2" class="tile state-down"[^>]* data-state="down"`},
		{domAfter, `<div id="node-2" class="tile state-up"[^>]* data-state="up"`},
	} {
		if !regexp.MustCompile(tt.want).MatchString(tt.dom) {
			t.Errorf("DOM dump lacks %s", tt.want)
		}
	}
	changed, total := diff(t, before, after, box.image())
	if changed < total/2 {
		t.Errorf("node 2's tile: %d of %d pixels changed, want most (its colour)", changed, total)
	}
	if changed, _ := diff(t, before, after, other.image()); changed != 0 {
		t.Errorf("node 0's tile: %d pixels changed, want none", changed)
	}
	t.Logf("node 2 tile %v: %d of %d pixels changed", box.image(), changed, total)
}

// TestUpdateLatency1000 keeps 1000 nodes sending stats at 1 Hz and flips
// node states, measuring the time from the table change to the tile's
// render (the page stamps data-state-at with Date.now() when a tile's
// state changes).
func TestUpdateLatency1000(t *testing.T) {
	if testing.Short() || os.Getenv("BEO_BIN") == "" && os.Getenv("BEO_HEAVY") == "" {
		t.Skip("the 1000-node dashboard measurement runs under `make test-root` (BEO_BIN set) or with BEO_HEAVY=1")
	}
	const count = 1000
	c := newCluster(t, count)
	for n := range count {
		c.sample(t, n, 1) // all alive
	}
	ctx := browser(t, 1400, 900)
	start := time.Now()
	within(t, ctx, 30*time.Second, "load page", chromedp.Navigate(c.url))
	within(t, ctx, 30*time.Second, "1000 tiles", chromedp.WaitVisible(fmt.Sprintf("#node-%d", count-1)))
	t.Logf("page with %d tiles ready in %v", count, time.Since(start).Round(time.Millisecond))

	// Stats at 1 Hz per node: 10 nodes every 10 ms.
	feed, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		seq, next := uint64(2), 0
		for {
			select {
			case <-feed.Done():
				return
			case <-tick.C:
			}
			for range 10 {
				c.sample(t, next, seq)
				if next++; next == count {
					next, seq = 0, seq+1
				}
			}
		}
	}()
	defer func() { stop(); wg.Wait() }()

	var lat []time.Duration
	for i := range 20 {
		n := (i*97 + 13) % count
		var to nodes.State
		var sel string
		t0 := time.Now()
		if i%2 == 0 {
			c.set(t, n, nodes.Boot) // bpslave connects to an alive host
			to, sel = nodes.Boot, fmt.Sprintf(`#node-%d.state-boot`, n)
		} else {
			c.set(t, n, nodes.Down) // loses it
			to, sel = nodes.Down, fmt.Sprintf(`#node-%d[data-state="down"], #node-%d[data-state="alive"]`, n, n)
		}
		within(t, ctx, 10*time.Second, fmt.Sprintf("node %d → %s", n, to), chromedp.WaitVisible(sel))
		at := within(t, ctx, 5*time.Second, "render time", chromedp.Evaluate[int64](
			fmt.Sprintf(`+document.getElementById("node-%d").dataset.stateAt`, n)))
		// Same clock, millisecond resolution: floor at 0.
		lat = append(lat, max(time.UnixMilli(at).Sub(t0), 0))
	}
	slices.Sort(lat)
	t.Logf("state change → tile rendered, %d nodes at 1 Hz: median %v, p90 %v, max %v (n=%d)",
		count, lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)-1], len(lat))
	if lat[len(lat)/2] > 2*time.Second {
		t.Errorf("median update latency %v, want under 2s", lat[len(lat)/2])
	}
}
