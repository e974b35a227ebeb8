package stats

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Collector reads a Sample from a /proc tree and a root file system.
type Collector struct {
	Proc string // the proc file system; "" = /proc
	Root string // statfs'd for rootfs use; "" = /
}

// Collect reads one sample. Claim, Seq and IntervalMS are left for the
// caller. A missing or unreadable file is an error naming it: a host
// without /proc/stat has nothing worth sending.
func (c Collector) Collect() (Sample, error) {
	proc, root := c.Proc, c.Root
	if proc == "" {
		proc = "/proc"
	}
	if root == "" {
		root = "/"
	}
	s := Sample{Claim: -1}
	steps := []struct {
		file  string
		parse func([]byte, *Sample) error
	}{
		{"stat", parseStat},
		{"loadavg", parseLoadavg},
		{"meminfo", parseMeminfo},
		{"uptime", parseUptime},
		{"net/dev", parseNetDev},
	}
	for _, st := range steps {
		path := filepath.Join(proc, st.file)
		b, err := os.ReadFile(path)
		if err != nil {
			return Sample{}, fmt.Errorf("collect: %w", err)
		}
		if err := st.parse(b, &s); err != nil {
			return Sample{}, fmt.Errorf("collect: %s: %w", path, err)
		}
	}
	procs, err := countProcs(proc)
	if err != nil {
		return Sample{}, fmt.Errorf("collect: %w", err)
	}
	s.Procs = procs
	var fs unix.Statfs_t
	if err := unix.Statfs(root, &fs); err != nil {
		return Sample{}, fmt.Errorf("collect: statfs %s: %w", root, err)
	}
	bs := uint64(fs.Bsize)
	s.RootTotal, s.RootFree, s.RootAvail = fs.Blocks*bs, fs.Bfree*bs, fs.Bavail*bs
	return s, nil
}

// parseStat reads the cpuN lines of /proc/stat (not the "cpu" total).
func parseStat(b []byte, s *Sample) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		if len(s.CPUs) == MaxCPUs {
			break
		}
		if len(f) < 5 { // kernels since 2.6 have at least user…iowait
			return fmt.Errorf("short line %q", sc.Text())
		}
		var c CPU
		for i, p := range c.fields() {
			if i+1 >= len(f) {
				break
			}
			v, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return fmt.Errorf("%s: %w", f[0], err)
			}
			*p = v
		}
		s.CPUs = append(s.CPUs, c)
	}
	if len(s.CPUs) == 0 {
		return fmt.Errorf("no cpuN lines")
	}
	return sc.Err()
}

// parseLoadavg reads "0.20 0.18 0.12 1/80 11206".
func parseLoadavg(b []byte, s *Sample) error {
	f := strings.Fields(string(b))
	if len(f) < 4 {
		return fmt.Errorf("want 5 fields, got %q", b)
	}
	for i, p := range []*uint64{&s.Load1, &s.Load5, &s.Load15} {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || v < 0 {
			return fmt.Errorf("load %q", f[i])
		}
		*p = uint64(v*100 + 0.5)
	}
	run, total, ok := strings.Cut(f[3], "/")
	if !ok {
		return fmt.Errorf("running/total %q", f[3])
	}
	var err1, err2 error
	s.Running, err1 = strconv.ParseUint(run, 10, 64)
	s.Threads, err2 = strconv.ParseUint(total, 10, 64)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("running/total %q", f[3])
	}
	return nil
}

// parseMeminfo reads the fields a Sample has; values are in kB.
func parseMeminfo(b []byte, s *Sample) error {
	want := map[string]*uint64{
		"MemTotal": &s.MemTotal, "MemFree": &s.MemFree, "MemAvailable": &s.MemAvailable,
		"Buffers": &s.Buffers, "Cached": &s.Cached, "SwapTotal": &s.SwapTotal, "SwapFree": &s.SwapFree,
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, rest, ok := strings.Cut(sc.Text(), ":")
		p := want[k]
		if !ok || p == nil {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return fmt.Errorf("%s: no value", k)
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		if len(f) > 1 && f[1] == "kB" {
			v *= 1024
		}
		*p = v
	}
	if s.MemTotal == 0 {
		return fmt.Errorf("no MemTotal")
	}
	return sc.Err()
}

// parseUptime reads "350735.47 234388.90".
func parseUptime(b []byte, s *Sample) error {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return fmt.Errorf("empty")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil || v < 0 {
		return fmt.Errorf("uptime %q", f[0])
	}
	s.UptimeMS = uint64(v * 1000)
	return nil
}

// parseNetDev reads /proc/net/dev: two header lines, then
// "  eth0: rxbytes rxpackets errs drop fifo frame compressed multicast
// txbytes txpackets errs drop …".
func parseNetDev(b []byte, s *Sample) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue // a header line
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if len(f) < 12 {
			return fmt.Errorf("%s: %d fields, want 16", name, len(f))
		}
		if !validIfaceName(name) || len(s.Ifaces) == MaxIfaces {
			continue // unprintable name, or far too many: leave it out
		}
		var v [12]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			v[i] = n
		}
		s.Ifaces = append(s.Ifaces, Iface{Name: name,
			RxBytes: v[0], RxPackets: v[1], RxErrs: v[2], RxDrop: v[3],
			TxBytes: v[8], TxPackets: v[9], TxErrs: v[10], TxDrop: v[11]})
	}
	return sc.Err()
}

// countProcs counts the numeric entries of the proc directory.
func countProcs(proc string) (uint64, error) {
	d, err := os.Open(proc)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	var n uint64
	for {
		names, err := d.Readdirnames(512)
		for _, name := range names {
			if name != "" && name[0] >= '1' && name[0] <= '9' {
				if _, err := strconv.ParseUint(name, 10, 64); err == nil {
					n++
				}
			}
		}
		if err != nil || len(names) == 0 {
			return n, nil
		}
	}
}
