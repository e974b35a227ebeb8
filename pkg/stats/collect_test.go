package stats

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCollectFixture(t *testing.T) {
	s, err := Collector{Proc: "testdata/proc", Root: "."}.Collect()
	if err != nil {
		t.Fatal(err)
	}
	if s.RootTotal == 0 || s.RootAvail > s.RootTotal {
		t.Errorf("rootfs total %d avail %d, want total > 0 ≥ avail", s.RootTotal, s.RootAvail)
	}
	s.RootTotal, s.RootFree, s.RootAvail = 0, 0, 0
	want := Sample{Claim: -1, UptimeMS: 350735470,
		Load1: 20, Load5: 18, Load15: 12, Running: 1, Threads: 80, Procs: 2,
		MemTotal: 2048000 << 10, MemFree: 512000 << 10, MemAvailable: 1024000 << 10,
		Buffers: 10240 << 10, Cached: 204800 << 10, SwapTotal: 102400 << 10, SwapFree: 102000 << 10,
		CPUs: []CPU{{1132, 34, 1441, 11311718, 3675, 127, 438, 0}, {1123, 0, 849, 11313845, 2614, 0, 18, 0}},
		Ifaces: []Iface{{Name: "lo", RxBytes: 123456, RxPackets: 789, TxBytes: 123456, TxPackets: 789},
			{Name: "eth0", RxBytes: 9876543, RxPackets: 12345, RxErrs: 1, RxDrop: 2,
				TxBytes: 5432100, TxPackets: 6789, TxErrs: 3, TxDrop: 4}},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("Collect:\n got %+v\nwant %+v", s, want)
	}
}

func TestCollectThisHost(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc on this host")
	}
	s, err := Collector{}.Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.CPUs) == 0 || s.MemTotal == 0 || s.UptimeMS == 0 || s.Procs == 0 || s.RootTotal == 0 {
		t.Errorf("implausible sample from this host: %+v", s)
	}
	if _, err := s.Append(nil); err != nil {
		t.Errorf("this host's sample does not encode: %v", err)
	}
}

func TestCollectBadFiles(t *testing.T) {
	tests := []struct {
		name, file, content, want string
	}{
		{"no cpu lines", "stat", "intr 1 2\n", "no cpuN lines"},
		{"bad cpu number", "stat", "cpu0 1 2 x 4 5\n", "cpu0"},
		{"short cpu line", "stat", "cpu0 1 2\n", "short line"},
		{"bad loadavg", "loadavg", "0.1 0.2\n", "want 5 fields"},
		{"negative load", "loadavg", "-1 0.2 0.3 1/2 3\n", "load"},
		{"bad run/total", "loadavg", "0.1 0.2 0.3 12 3\n", "running/total"},
		{"no MemTotal", "meminfo", "MemFree: 5 kB\n", "no MemTotal"},
		{"bad meminfo value", "meminfo", "MemTotal: lots kB\n", "MemTotal"},
		{"bad uptime", "uptime", "soon\n", "uptime"},
		{"short net/dev line", "net/dev", "h\nh\n eth0: 1 2 3\n", "eth0"},
		{"missing file", "uptime", "", "no such file"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		copyTree(t, "testdata/proc", dir)
		path := filepath.Join(dir, tt.file)
		if tt.content == "" {
			os.Remove(path)
		} else if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Collector{Proc: dir, Root: dir}.Collect()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Collect error %v, want %q", tt.name, err, tt.want)
		}
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzProcParsers feeds every /proc parser arbitrary text: each either
// fails or fills a sample that encodes.
func FuzzProcParsers(f *testing.F) {
	for _, name := range []string{"stat", "loadavg", "meminfo", "uptime", "net/dev"} {
		b, err := os.ReadFile(filepath.Join("testdata/proc", name))
		if err != nil {
			f.Fatal(err)
		}
		for i := range 5 {
			f.Add(uint8(i), b)
		}
	}
	parsers := []func([]byte, *Sample) error{parseStat, parseLoadavg, parseMeminfo, parseUptime, parseNetDev}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		s := Sample{Claim: -1}
		if err := parsers[int(which)%len(parsers)](b, &s); err != nil {
			return
		}
		if _, err := s.Append(nil); err != nil {
			t.Fatalf("parsed sample does not encode: %v", err)
		}
	})
}
