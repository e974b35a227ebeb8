// Command ghosts measures what ghosts cost (issue 14): it starts N
// remote `sleep` processes through pkg/bproc, round-robin over the nodes
// of the cluster at $BEO_SOCKET, waits until the master's records show a
// ghost for every one, and prints one line of key=value:
//
//	n=1000 nodes=64 started_ms=… ghosts_ms=… after_last_ms=… pss_kib_each=… rss_kib_each=… client_rss_kib=…
//
// The processes are started all at once (each node's cache warmed
// first). started_ms: from the first Start to the last Started; ghosts_ms: from
// the first Start until every process has its ghost; after_last_ms: from
// the last Started until then (the ghosts' own start, past the 50 ms a
// process lives before it gets one); pss/rss: smaps_rollup of the
// ghosts (this process's children), summed and divided by N;
// client_rss_kib: this process's own RSS with them all running. Then it
// kills them all through their ghosts and waits for every process.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
)

func main() {
	n := flag.Int("n", 100, "remote processes")
	nodes := flag.Int("nodes", 1, "spread over nodes 0..NODES-1")
	flag.Parse()
	if err := run(*n, *nodes); err != nil {
		fmt.Fprintln(os.Stderr, "ghosts:", err)
		os.Exit(1)
	}
}

func run(n, nodes int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := bproc.Dial(ctx, "")
	if err != nil {
		return err
	}
	defer c.Close()
	// Every node's cache warm first: the run measures ghosts, not the
	// first transfer of sleep and libc.
	for i := 0; i < min(n, nodes); i++ {
		if err := c.Command(i, "true").Run(); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
	}
	cmds := make([]*bproc.Cmd, n)
	errs := make(chan error, n)
	t0 := time.Now()
	for i := range cmds { // all at once, as bpsh -a starts them
		cmds[i] = c.Command(i%nodes, "sleep", "3600")
		go func() { errs <- cmds[i].Start() }()
	}
	for range cmds {
		if err := <-errs; err != nil {
			return err
		}
	}
	started := time.Since(t0)
	var wg sync.WaitGroup
	for _, cmd := range cmds {
		wg.Add(1)
		go func() { defer wg.Done(); cmd.Wait() }()
	}
	me := os.Getpid()
	var ghosts []int
	for {
		ps, err := c.Procs(ctx)
		if err != nil {
			return err
		}
		ghosts = ghosts[:0]
		for _, p := range ps {
			if p.Client == me && p.Ghost != me {
				ghosts = append(ghosts, p.Ghost)
			}
		}
		if len(ghosts) >= n {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%d of %d ghosts", len(ghosts), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	all := time.Since(t0)
	pss, rss := 0, 0
	for _, g := range ghosts {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", g))
		pss += field(b, pssRe)
		rss += field(b, rssRe)
	}
	self, _ := os.ReadFile("/proc/self/smaps_rollup")
	fmt.Printf("n=%d nodes=%d started_ms=%.1f ghosts_ms=%.1f after_last_ms=%.1f pss_kib_each=%.1f rss_kib_each=%.1f client_rss_kib=%d\n",
		n, nodes, ms(started), ms(all), ms(all-started), float64(pss)/float64(n), float64(rss)/float64(n), field(self, rssRe))
	for _, g := range ghosts {
		syscall.Kill(g, syscall.SIGKILL) // through the ghost, as kill(1) would
	}
	wg.Wait()
	return nil
}

var (
	pssRe = regexp.MustCompile(`(?m)^Pss:\s+(\d+) kB`)
	rssRe = regexp.MustCompile(`(?m)^Rss:\s+(\d+) kB`)
)

func field(b []byte, re *regexp.Regexp) int {
	m := re.FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.Atoi(strings.TrimSpace(string(m[1])))
	return v
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
