package beostat

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/stats"
)

// master serves /api/stats for 3 nodes; node 1 (10.0.0.101) sent two samples.
func master(t *testing.T) string {
	t.Helper()
	return masterJobs(t, nil)
}

// masterJobs is master with a job source.
func masterJobs(t *testing.T, jobs dashboard.JobSource) string {
	t.Helper()
	addr := func(n int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(100 + n)}) }
	tab := nodes.New(nil, nodes.Node{Num: 0, Addr: addr(0)}, nodes.Node{Num: 1, Addr: addr(1)}, nodes.Node{Num: 2, Addr: addr(2)})
	rcv, err := stats.NewReceiver(stats.Config{Table: tab, Resolve: func(a netip.Addr) (int, bool) {
		return int(a.As4()[3]) - 100, a == addr(1)
	}})
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 2; seq++ {
		s := stats.Sample{Claim: -1, Seq: seq, IntervalMS: 5000, UptimeMS: 90061000 + seq*1000,
			Load1: 123, Load5: 45, Load15: 6, Running: 2, Threads: 90, Procs: 40,
			MemTotal: 8 << 30, MemFree: 2 << 30, MemAvailable: 6 << 30, SwapTotal: 1 << 30, SwapFree: 1 << 29,
			RootTotal: 100 << 30, RootFree: 40 << 30, RootAvail: 30 << 30,
			CPUs:   []stats.CPU{{User: 50 * seq, Idle: 150 * seq}},
			Ifaces: []stats.Iface{{Name: "eth0", RxBytes: 3000 * seq, RxPackets: 7 * seq, TxBytes: 1 << 20}}}
		b, err := s.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := rcv.Ingest(addr(1), b); err != nil {
			t.Fatal(err)
		}
	}
	d, err := dashboard.New(dashboard.Config{Table: tab, Stats: rcv, Jobs: jobs})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return srv.URL
}

func run(t *testing.T, args ...string) (string, error) {
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, applets.IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return out.String(), err
}

func TestBeostat(t *testing.T) {
	url := master(t)
	tests := []struct {
		name    string
		args    []string
		want    []string // lines or fragments that must appear
		notWant []string
	}{
		{"everything", nil, []string{"Node 1 (alive) 10.0.0.101: last sample", "uptime 1d1h1m",
			"load      1.23 0.45 0.06", "running 2, threads 90, processes 40", "cpu       25.0% busy",
			"cpu0      25.0% busy", "memory    2.0G used of 8.0G", "swap      512.0M used of 1.0G",
			"rootfs    60.0G used of 100.0G", "net eth0  rx 5.9K 14 pkts", "rx 2.9K/s tx 0B/s"},
			[]string{"Node 0", "Node 2"}},
		{"memory only", []string{"-m"}, []string{"memory", "swap"}, []string{"load", "cpu", "rootfs", "net"}},
		{"load only", []string{"-l"}, []string{"load  1.23 0.45 0.06  running 2"}, []string{"memory"}},
		{"named nodes", []string{"-N", "0,1", "-D"}, []string{"Node 0 (down) 10.0.0.100: no stats", "rootfs"}, []string{"Node 2"}},
		{"brief", []string{"-b", "-N", "all"}, []string{"Node Status Load1 CPU%  Mem%  Rx/s Tx/s Procs Uptime",
			"0    down   -     -     -     -    -    -     -", "1    alive  1.23  25.0% 25.0% 2.9K 0B   40    1d1h1m"}, nil},
	}
	for _, tt := range tests {
		out, err := run(t, append([]string{"-url", url}, tt.args...)...)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", tt.name, w, out)
			}
		}
		for _, w := range tt.notWant {
			if strings.Contains(out, w) {
				t.Errorf("%s: output has %q:\n%s", tt.name, w, out)
			}
		}
	}
	out, err := run(t, "-url", url, "-json", "-N", "1")
	var snap dashboard.Snapshot
	if err != nil || json.Unmarshal([]byte(out), &snap) != nil || len(snap.Nodes) != 1 || snap.Nodes[0].Stats.Report.Procs != 40 {
		t.Errorf("-json: %v %q", err, out)
	}
	if _, err := run(t, "-url", url, "-N", "9"); err == nil || !strings.Contains(err.Error(), "no such node") {
		t.Errorf("-N 9: %v, want no such node", err)
	}
	if _, err := run(t, "-url", "http://127.0.0.1:1", "-timeout", "2s"); err == nil {
		t.Error("no master: nil error")
	}
	if _, err := run(t, "stray"); err == nil {
		t.Error("stray argument: nil error")
	}
}
