package stats

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func testSample() Sample {
	return Sample{
		Claim: 3, Seq: 7, IntervalMS: 5000, UptimeMS: 350735470,
		Load1: 20, Load5: 18, Load15: 12, Running: 1, Threads: 80, Procs: 2,
		MemTotal: 2 << 30, MemFree: 1 << 29, MemAvailable: 1 << 30, Buffers: 1 << 20, Cached: 1 << 25,
		SwapTotal: 1 << 27, SwapFree: 1 << 26, RootTotal: 1 << 33, RootFree: 1 << 32, RootAvail: 1 << 31,
		CPUs: []CPU{{1132, 34, 1441, 11311718, 3675, 127, 438, 0}, {1123, 0, 849, 11313845, 2614, 0, 18, 1}},
		Ifaces: []Iface{{Name: "lo", RxBytes: 123456, RxPackets: 789, TxBytes: 123456, TxPackets: 789},
			{Name: "eth0", RxBytes: 1<<63 + 5, RxPackets: 12345, RxErrs: 1, RxDrop: 2,
				TxBytes: 5432100, TxPackets: 6789, TxErrs: 3, TxDrop: 4}},
	}
}

func TestRoundTrip(t *testing.T) {
	many := testSample()
	many.CPUs = make([]CPU, MaxCPUs)
	many.Ifaces = nil
	for range MaxIfaces {
		many.Ifaces = append(many.Ifaces, Iface{Name: "veth-abcdefghij", RxBytes: ^uint64(0)})
	}
	for i := range many.CPUs {
		many.CPUs[i] = CPU{User: uint64(i) << 40, Idle: ^uint64(0)}
	}
	noClaim := testSample()
	noClaim.Claim = -1
	tests := []struct {
		name string
		in   Sample
	}{
		{"typical", testSample()},
		{"no claim", noClaim},
		{"empty lists", Sample{Claim: -1}},
		{"at the limits", many},
	}
	for _, tt := range tests {
		b, err := tt.in.Append([]byte("prefix"))
		if err != nil {
			t.Fatalf("%s: Append: %v", tt.name, err)
		}
		if !bytes.HasPrefix(b, []byte("prefix"+Magic)) {
			t.Fatalf("%s: Append did not append after the prefix", tt.name)
		}
		var got Sample
		if err := got.Decode(b[len("prefix"):]); err != nil {
			t.Fatalf("%s: Decode: %v", tt.name, err)
		}
		if want := tt.in; !reflect.DeepEqual(norm(got), norm(want)) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, want)
		}
	}
}

// norm makes empty lists nil, so DeepEqual compares contents.
func norm(s Sample) Sample {
	if len(s.CPUs) == 0 {
		s.CPUs = nil
	}
	if len(s.Ifaces) == 0 {
		s.Ifaces = nil
	}
	return s
}

func TestAppendRefuses(t *testing.T) {
	mod := func(f func(*Sample)) Sample { s := testSample(); f(&s); return s }
	tests := []struct {
		name string
		in   Sample
		want string
	}{
		{"claim below -1", mod(func(s *Sample) { s.Claim = -2 }), "bad node claim"},
		{"too many CPUs", mod(func(s *Sample) { s.CPUs = make([]CPU, MaxCPUs+1) }), "CPUs, at most"},
		{"too many ifaces", mod(func(s *Sample) { s.Ifaces = make([]Iface, MaxIfaces+1) }), "interfaces, at most"},
		{"empty iface name", mod(func(s *Sample) { s.Ifaces[0].Name = "" }), "bad interface name"},
		{"long iface name", mod(func(s *Sample) { s.Ifaces[0].Name = "abcdefghijklmnop" }), "bad interface name"},
		{"iface name with space", mod(func(s *Sample) { s.Ifaces[0].Name = "a b" }), "bad interface name"},
		{"iface name with newline", mod(func(s *Sample) { s.Ifaces[0].Name = "a\n" }), "bad interface name"},
	}
	for _, tt := range tests {
		_, err := tt.in.Append(nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Append error %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good, err := (&Sample{Claim: -1, CPUs: []CPU{{}}, Ifaces: []Iface{{Name: "eth0"}}}).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	with := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	// good is: header(6) claim seq iv up l1 l5 l15 run thr procs mem×7 root×3 = 19+1 varints,
	// then ncpu=1, 8 zeros, nif=1, namelen=4, "eth0", 8 zeros.
	ncpuOff := headerLen + 20
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "header"},
		{"garbage", []byte("GET / HTTP/1.0\r\n\r\n"), "header"},
		{"header only", good[:headerLen], "truncated"},
		{"truncated", good[:len(good)-1], "truncated"},
		{"trailing byte", append(bytes.Clone(good), 0), "trailing"},
		{"version 2", with(func(b []byte) []byte { b[4] = 2; return b }), "version 2"},
		{"flags", with(func(b []byte) []byte { b[5] = 1; return b }), "flags"},
		{"oversized", append(bytes.Clone(good), make([]byte, MaxSize)...), "at most"},
		{"varint overflow", append(good[:headerLen:headerLen],
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), "overflows"},
		{"claim out of range", append(good[:headerLen:headerLen], 0xff, 0xff, 0xff, 0xff, 0x0f), "claim"},
		{"too many CPUs", with(func(b []byte) []byte { b[ncpuOff] = 0x7f; return b }), "do not fit"},
		{"CPU count above limit", append(good[:ncpuOff:ncpuOff], 0x81, 0x10), "at most 1024"},
		{"name too long", with(func(b []byte) []byte { b[ncpuOff+10] = 16; return b }), "name of 16"},
		{"name empty", with(func(b []byte) []byte { b[ncpuOff+10] = 0; return b }), "name of 0"},
		{"name with slash", with(func(b []byte) []byte { b[ncpuOff+11] = '/'; return b }), "bad interface name"},
	}
	for _, tt := range tests {
		var s Sample
		err := s.Decode(tt.in)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Decode error %v, want ErrFormat containing %q", tt.name, err, tt.want)
		}
	}
}

func TestDecodeReusesStorage(t *testing.T) {
	in := testSample()
	b, _ := in.Append(nil)
	var s Sample
	if err := s.Decode(b); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := s.Decode(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode into a used Sample: %v allocs, want 0", allocs)
	}
}

func FuzzDecode(f *testing.F) {
	s := testSample()
	b, _ := s.Append(nil)
	f.Add(b)
	f.Add([]byte(Magic + "\x01\x00"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Sample
		if err := s.Decode(b); err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		// What decodes must encode back to the same bytes (one encoding).
		out, err := s.Append(nil)
		if err != nil {
			t.Fatalf("decoded sample does not encode: %v", err)
		}
		var again Sample
		if err := again.Decode(out); err != nil {
			t.Fatalf("re-encoded sample does not decode: %v", err)
		}
		if !reflect.DeepEqual(norm(s), norm(again)) {
			t.Fatalf("round trip changed the sample:\n%+v\n%+v", s, again)
		}
	})
}
