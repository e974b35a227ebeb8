package netns

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// statsSnapshot is the part of beostat -json the test reads.
type statsSnapshot struct {
	Nodes []struct {
		Node  int    `json:"node"`
		State string `json:"state"`
		Stats *struct {
			From   string `json:"from"`
			Report struct {
				Procs uint64 `json:"procs"`
				Mem   struct {
					Total uint64 `json:"total"`
				} `json:"mem"`
				Net []struct {
					Name string `json:"name"`
				} `json:"net"`
			} `json:"report"`
		} `json:"stats"`
	} `json:"nodes"`
	Rejected map[string]uint64 `json:"rejected"`
}

// TestStatsNonScyldHost: an ordinary Linux host (a namespace) running
// `beo sendstats` shows as alive on the master's recvstats, with its own
// /proc data; a sample claiming another node's number and garbage are
// rejected and counted; when the host stops sending it goes down.
func TestStatsNonScyldHost(t *testing.T) {
	Require(t, "bash")
	beo := Beo(t)
	master := Add(t, "bst")
	host := Add(t, "bsh")
	Veth(t, master, "c0", "10.98.0.1/24", host, "eth0", "")
	host.Run(t, "ip", "addr", "add", "10.98.0.12/24", "dev", "eth0") // node 2
	host.Run(t, "ip", "addr", "add", "10.98.0.13/24", "dev", "eth0") // node 3's address, used to spoof

	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	if err := os.WriteFile(cfg, []byte("nodes 4\niprange 10.98.0.10 10.98.0.13\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	recv := Start(t, master.Command(ctx, beo, "recvstats", "-config", cfg,
		"-listen", "10.98.0.1:5545", "-http", "127.0.0.1:5546"))
	recv.WaitLog(t, "recvstats listening", 10*time.Second)

	beostat := func(args ...string) string {
		return master.Run(t, append([]string{beo, "beostat", "-url", "http://127.0.0.1:5546"}, args...)...)
	}
	snapshot := func() statsSnapshot {
		var s statsSnapshot
		out := beostat("-json", "-N", "all")
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("beostat -json: %v\n%s", err, out)
		}
		return s
	}

	sctx, stopSend := context.WithCancel(ctx)
	defer stopSend()
	send := Start(t, host.Command(sctx, beo, "sendstats", "-interval", "200ms", "-bind", "10.98.0.12", "10.98.0.1"))
	// The spoofer: node 3's address claiming to be node 2.
	Start(t, host.Command(ctx, beo, "sendstats", "-interval", "200ms", "-bind", "10.98.0.13", "-claim", "2", "10.98.0.1"))
	host.Run(t, "bash", "-c", "printf 'garbage' >/dev/udp/10.98.0.1/5545")

	Eventually(t, 10*time.Second, "node 2 alive with stats, spoof and garbage rejected", func() bool {
		s := snapshot()
		return len(s.Nodes) == 4 && s.Nodes[2].State == "alive" && s.Nodes[2].Stats != nil &&
			s.Rejected["wrong_claim"] > 0 && s.Rejected["malformed"] > 0
	})
	s := snapshot()
	for n, want := range []string{"down", "down", "alive", "down"} {
		if got := s.Nodes[n].State; got != want {
			t.Errorf("node %d is %s, want %s", n, got, want)
		}
	}
	if s.Nodes[3].Stats != nil {
		t.Errorf("node 3 has stats from the spoofer: %+v", s.Nodes[3].Stats)
	}
	st := s.Nodes[2].Stats
	if st.From != "10.98.0.12" || st.Report.Mem.Total == 0 || st.Report.Procs == 0 {
		t.Errorf("node 2 stats from %s, mem %d, procs %d", st.From, st.Report.Mem.Total, st.Report.Procs)
	}
	var ifaces []string
	for _, n := range st.Report.Net {
		ifaces = append(ifaces, n.Name)
	}
	if got := strings.Join(ifaces, ","); !strings.Contains(got, "eth0") || !strings.Contains(got, "lo") {
		t.Errorf("node 2 interfaces %s, want the namespace's lo and eth0", got)
	}
	if out := beostat("-b", "-N", "2"); !strings.Contains(out, "2    alive") {
		t.Errorf("beostat -b -N 2:\n%s", out)
	}
	if out := beostat("-n"); !strings.Contains(out, "Node 2 (alive) 10.98.0.12") || !strings.Contains(out, "net eth0") {
		t.Errorf("beostat -n:\n%s", out)
	}

	// The host stops sending: 3 intervals (at least 1 s each) later it is down.
	stopSend()
	send.Cmd.Wait()
	Eventually(t, 15*time.Second, "node 2 down after its stats stopped", func() bool {
		return snapshot().Nodes[2].State == "down"
	})
	recv.WaitLog(t, "node down: its stats stopped", 5*time.Second)
}
