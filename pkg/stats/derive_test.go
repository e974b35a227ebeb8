package stats

import (
	"math"
	"testing"
)

func TestDerive(t *testing.T) {
	prev := testSample()
	cur := testSample()
	cur.UptimeMS = prev.UptimeMS + 2000
	// cpu0: 100 ticks, 25 busy (user 10+nice 5, system 5+irq 3+softirq 2), 70 idle, 5 iowait.
	c := &cur.CPUs[0]
	c.User += 10
	c.Nice += 5
	c.System += 5
	c.IRQ += 3
	c.SoftIRQ += 2
	c.Idle += 70
	c.IOWait += 5
	// cpu1: 100 ticks all idle.
	cur.CPUs[1].Idle += 100
	cur.Ifaces[1].RxBytes += 2000
	cur.Ifaces[1].TxPackets += 10
	cur.Ifaces = append(cur.Ifaces, Iface{Name: "new0", RxBytes: 99})

	r := Derive(&prev, &cur)
	approx := func(name string, got, want float64) {
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if !r.HaveRates {
		t.Fatal("HaveRates false, want true")
	}
	approx("CPU", r.CPU, 12.5)
	approx("cpu0 busy", r.Cores[0].Busy, 25)
	approx("cpu0 user", r.Cores[0].User, 15)
	approx("cpu0 system", r.Cores[0].System, 10)
	approx("cpu0 iowait", r.Cores[0].IOWait, 5)
	approx("cpu0 idle", r.Cores[0].Idle, 70)
	approx("cpu1 busy", r.Cores[1].Busy, 0)
	approx("eth0 rx B/s", r.Net[1].RxBps, 1000)
	approx("eth0 tx pkt/s", r.Net[1].TxPps, 5)
	approx("lo rx B/s", r.Net[0].RxBps, 0)
	approx("new0 rx B/s (no previous)", r.Net[2].RxBps, 0)
	approx("load1", r.Load[0], 0.2)
	if r.Mem.Used != cur.MemTotal-cur.MemAvailable {
		t.Errorf("Mem.Used = %d, want %d", r.Mem.Used, cur.MemTotal-cur.MemAvailable)
	}
	if r.Uptime != float64(cur.UptimeMS)/1000 || r.Interval != 5 {
		t.Errorf("uptime %v interval %v, want %v 5", r.Uptime, r.Interval, float64(cur.UptimeMS)/1000)
	}

	tests := []struct {
		name string
		prev *Sample
		cur  func() Sample
	}{
		{"first sample", nil, testSample},
		{"rebooted: uptime went back", &prev, func() Sample { s := testSample(); s.UptimeMS = 1000; return s }},
		{"counters went back", &prev, func() Sample {
			s := testSample()
			s.UptimeMS += 1000
			s.CPUs[1].Idle = 1
			return s
		}},
		{"CPU count changed", &prev, func() Sample {
			s := testSample()
			s.UptimeMS += 1000
			s.CPUs = s.CPUs[:1]
			return s
		}},
	}
	for _, tt := range tests {
		c := tt.cur()
		r := Derive(tt.prev, &c)
		if r.HaveRates || r.CPU != -1 || r.Cores[0].Busy != -1 || r.Net[1].RxBps != 0 {
			t.Errorf("%s: HaveRates %v CPU %v core0 %v rx %v, want no rates", tt.name,
				r.HaveRates, r.CPU, r.Cores[0].Busy, r.Net[1].RxBps)
		}
	}
}
