package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/nodelog"
)

func TestTimeline(t *testing.T) {
	dir := t.TempDir()
	c := &Cluster{Config: filepath.Join(dir, "config"), LogDir: dir}
	// MAC(100) is not listed: the boot server appended it as node 2.
	cfg := Config(3, []string{MAC(0).String(), MAC(1).String()}, "node 2 "+MAC(100).String())
	if err := os.WriteFile(c.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d float64) time.Time { return t0.Add(time.Duration(d * float64(time.Second))) }
	// The node log as the boot server and bpmaster write it, with a
	// node_up script's raw output among the lines.
	for _, l := range []struct {
		at       float64 // -1: a raw line
		who, txt string
	}{
		{2.5, "beoserv", "DISCOVER 52:54:00:be:00:64 from iPXE (PXEClient) → OFFER 10.99.0.102"},
		{2.6, "beoserv", "REQUEST 52:54:00:be:00:64 from iPXE (PXEClient) → ACK 10.99.0.102"},
		{-1, "", "node_up output line"},
		{3, "beoserv", "http GET /ipxe/52-54-00-be-00-64 from 10.99.0.102:1234: stage pxe"},
		{3.2, "beoserv", "http GET /boot/kernel (/x): 100 bytes"},
		{3.25, "beoserv", "http GET /boot/kernel (/x): sent 100 bytes in 50ms"},
		{3.3, "beoserv", "http GET /boot/initrd: 200 bytes"},
		{3.9, "beoserv", "http GET /boot/initrd: sent 200 bytes in 600ms"},
		{9, "beoserv", "REQUEST 52:54:00:be:00:64 from plain (beoclient) → ACK 10.99.0.102"},
		{9.5, "beoserv", "http GET /boot/rootfs.cpio: 2716 bytes"},
		{9.8, "beoserv", "REQUEST 52:54:00:be:00:64 from plain (beoclient) → ACK 10.99.0.102"},
		{10.1, "bpmaster", "connected from 10.99.0.102:40000 (macs [52:54:00:be:00:64], build test)"},
	} {
		if l.at < 0 {
			f, err := os.OpenFile(nodelog.Path(dir, 2), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(l.txt + "\n")
			f.Close()
			continue
		}
		w := nodelog.Log{Dir: dir, Who: l.who, Clock: func() time.Time { return at(l.at) }}
		if err := w.Printf(2, "%s", l.txt); err != nil {
			t.Fatal(err)
		}
	}
	m := &Machine{VM: VM{Name: "vm2", MAC: MAC(100)}, Proc: &Proc{Started: t0}, changed: make(chan struct{})}
	// Buffered until the console registers: these bound the start late.
	m.add(at(5.5), "[    0.000000] Linux version 6.1.0\n")
	m.add(at(5.5), "[    1.000000] early line\n")
	m.add(at(5.6), "[    1.500000] console line, printed live\n") // 5.6 − 1.5 = 4.1
	m.add(at(5.9), "[    1.900000] the tightest bound\n")         // 5.9 − 1.9 = 4.0
	m.add(at(6.0), "no stamp\n")
	m.add(at(7), "[    3.000000] Run /init as init process\n")
	m.add(at(7.5), "[    4.000000] after init: not used\n")
	m.add(at(8), "[    4.000000] Run /init as init process\n") // not the first
	c.events = []Event{{at(0.1), 2, "down"}, {at(9.5), 1, "boot"}, {at(10), 2, "boot"}, {at(10.25), 2, "up"}}
	got := c.Timeline(m)
	want := []struct {
		name string
		t    float64 // seconds after t0; -1 = not seen
	}{
		{MomentQEMU, 0}, {MomentDHCP, 2.6}, {MomentScript, 3}, {MomentKernelFetch, 3.2},
		{MomentInitrdFetch, 3.3}, {MomentFetched, 3.9}, {MomentKernel, 4}, {MomentInit, 7},
		{MomentNodeDHCP, 9}, {MomentRootfs, 9.5}, {MomentBoot, 10}, {MomentUp, 10.25},
	}
	if len(got) != len(want) {
		t.Fatalf("Timeline = %v, want %d moments", got, len(want))
	}
	for i, w := range want {
		if got[i].Name != w.name || !got[i].T.Equal(at(w.t)) {
			t.Errorf("moment %d = %s at %v, want %s at +%vs", i, got[i].Name, got[i].T.Sub(t0), w.name, w.t)
		}
	}
	table := FormatTimeline(got)
	for _, s := range []string{"kernel started                 4.00s    +0.10s  (serial)", "up                            10.25s    +0.25s  (watch)"} {
		if !strings.Contains(table, s) {
			t.Errorf("FormatTimeline lacks %q:\n%s", s, table)
		}
	}
	// A machine the config does not know: only its own moments.
	m2 := &Machine{VM: VM{Name: "vm9", MAC: MAC(9)}, Proc: &Proc{Started: t0}, changed: make(chan struct{})}
	got = c.Timeline(m2)
	if !got[1].T.IsZero() || !got[len(got)-1].T.IsZero() {
		t.Errorf("unknown machine's timeline has node moments: %v", got)
	}
	if !strings.Contains(FormatTimeline(got), "not seen") {
		t.Errorf("FormatTimeline of missing moments lacks \"not seen\"")
	}
}
