package stats

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Version is the sample format's version; see the package doc.
const Version = 1

// Magic starts every sample datagram.
const Magic = "beoS"

// Limits of one sample.
const (
	MaxSize      = 60000 // bytes in one datagram
	MaxCPUs      = 1024
	MaxIfaces    = 128
	MaxIfaceName = 15 // IFNAMSIZ-1
	headerLen    = len(Magic) + 2
)

// ErrFormat is wrapped by every decoding error.
var ErrFormat = errors.New("malformed stats sample")

// CPU is one core's cumulative time from /proc/stat, in USER_HZ ticks.
type CPU struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal uint64
}

// Total is the sum of every field.
func (c CPU) Total() uint64 {
	return c.User + c.Nice + c.System + c.Idle + c.IOWait + c.IRQ + c.SoftIRQ + c.Steal
}

// Busy is the time spent neither idle nor waiting for I/O.
func (c CPU) Busy() uint64 { return c.Total() - c.Idle - c.IOWait }

func (c *CPU) fields() []*uint64 {
	return []*uint64{&c.User, &c.Nice, &c.System, &c.Idle, &c.IOWait, &c.IRQ, &c.SoftIRQ, &c.Steal}
}

// Iface is one network interface's cumulative counters from /proc/net/dev.
type Iface struct {
	Name                               string
	RxBytes, RxPackets, RxErrs, RxDrop uint64
	TxBytes, TxPackets, TxErrs, TxDrop uint64
}

func (f *Iface) fields() []*uint64 {
	return []*uint64{&f.RxBytes, &f.RxPackets, &f.RxErrs, &f.RxDrop,
		&f.TxBytes, &f.TxPackets, &f.TxErrs, &f.TxDrop}
}

// Sample is one report from sendstats: what /proc said at one moment.
type Sample struct {
	Claim      int    // node number the sender believes it has; -1 = none
	Seq        uint64 // sender's counter
	IntervalMS uint64 // sender's interval
	UptimeMS   uint64

	Load1, Load5, Load15 uint64 // ×100
	Running, Threads     uint64 // /proc/loadavg "running/total"
	Procs                uint64

	MemTotal, MemFree, MemAvailable, Buffers, Cached uint64 // bytes
	SwapTotal, SwapFree                              uint64
	RootTotal, RootFree, RootAvail                   uint64 // bytes

	CPUs   []CPU
	Ifaces []Iface
}

func (s *Sample) scalars() []*uint64 {
	return []*uint64{&s.Seq, &s.IntervalMS, &s.UptimeMS,
		&s.Load1, &s.Load5, &s.Load15, &s.Running, &s.Threads, &s.Procs,
		&s.MemTotal, &s.MemFree, &s.MemAvailable, &s.Buffers, &s.Cached,
		&s.SwapTotal, &s.SwapFree, &s.RootTotal, &s.RootFree, &s.RootAvail}
}

// Append encodes s after b. It fails only when s breaks a limit (too many
// CPUs or interfaces, a bad interface name, a claim below -1, a result
// longer than MaxSize), so a sender never emits what a receiver refuses.
func (s *Sample) Append(b []byte) ([]byte, error) {
	if s.Claim < -1 || s.Claim >= math.MaxInt32 {
		return nil, fmt.Errorf("stats: bad node claim %d", s.Claim)
	}
	if len(s.CPUs) > MaxCPUs {
		return nil, fmt.Errorf("stats: %d CPUs, at most %d", len(s.CPUs), MaxCPUs)
	}
	if len(s.Ifaces) > MaxIfaces {
		return nil, fmt.Errorf("stats: %d interfaces, at most %d", len(s.Ifaces), MaxIfaces)
	}
	start := len(b)
	b = append(b, Magic...)
	b = append(b, Version, 0)
	b = binary.AppendUvarint(b, uint64(s.Claim+1))
	for _, p := range s.scalars() {
		b = binary.AppendUvarint(b, *p)
	}
	b = binary.AppendUvarint(b, uint64(len(s.CPUs)))
	for i := range s.CPUs {
		for _, p := range s.CPUs[i].fields() {
			b = binary.AppendUvarint(b, *p)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(s.Ifaces)))
	for i := range s.Ifaces {
		f := &s.Ifaces[i]
		if !validIfaceName(f.Name) {
			return nil, fmt.Errorf("stats: bad interface name %q", f.Name)
		}
		b = binary.AppendUvarint(b, uint64(len(f.Name)))
		b = append(b, f.Name...)
		for _, p := range f.fields() {
			b = binary.AppendUvarint(b, *p)
		}
	}
	if len(b)-start > MaxSize {
		return nil, fmt.Errorf("stats: sample of %d bytes, at most %d", len(b)-start, MaxSize)
	}
	return b, nil
}

// validIfaceName reports whether name is 1…MaxIfaceName printable ASCII
// bytes without space, '/' or ':' (what the kernel and /proc/net/dev allow
// and what prints safely).
func validIfaceName(name string) bool {
	if len(name) == 0 || len(name) > MaxIfaceName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c > '~' || c == '/' || c == ':' {
			return false
		}
	}
	return true
}

// decoder reads varints from a datagram, remembering the first error.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: byte %d: %s", ErrFormat, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	switch {
	case n == 0:
		d.fail("truncated")
		return 0
	case n < 0:
		d.fail("varint overflows 64 bits")
		return 0
	}
	d.off += n
	return v
}

// count reads a list length and checks it against limit and against the
// bytes left (each element takes at least minLen bytes), so a hostile
// length never makes Decode allocate more than the datagram justifies.
func (d *decoder) count(what string, limit, minLen int) int {
	v := d.uvarint()
	if d.err != nil {
		return 0
	}
	if v > uint64(limit) {
		d.fail("%d %s, at most %d", v, what, limit)
		return 0
	}
	if v*uint64(minLen) > uint64(len(d.b)-d.off) {
		d.fail("%d %s do not fit in %d bytes", v, what, len(d.b)-d.off)
		return 0
	}
	return int(v)
}

// Decode parses one datagram into s, reusing s's slices. On error s holds
// garbage and the error wraps ErrFormat.
func (s *Sample) Decode(b []byte) error {
	if len(b) > MaxSize {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrFormat, len(b), MaxSize)
	}
	if len(b) < headerLen || string(b[:len(Magic)]) != Magic {
		return fmt.Errorf("%w: no %q header", ErrFormat, Magic)
	}
	if b[4] != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrFormat, b[4], Version)
	}
	if b[5] != 0 {
		return fmt.Errorf("%w: flags %#x, want 0", ErrFormat, b[5])
	}
	d := decoder{b: b, off: headerLen}
	claim := d.uvarint()
	if claim > math.MaxInt32 {
		d.fail("node claim %d out of range", claim)
	}
	s.Claim = int(claim) - 1
	for _, p := range s.scalars() {
		*p = d.uvarint()
	}
	n := d.count("CPUs", MaxCPUs, 8)
	s.CPUs = grow(s.CPUs, n)
	for i := range s.CPUs {
		for _, p := range s.CPUs[i].fields() {
			*p = d.uvarint()
		}
	}
	n = d.count("interfaces", MaxIfaces, 10)
	s.Ifaces = grow(s.Ifaces, n)
	for i := range s.Ifaces {
		f := &s.Ifaces[i]
		l := d.uvarint()
		if d.err == nil && (l == 0 || l > MaxIfaceName || l > uint64(len(b)-d.off)) {
			d.fail("interface name of %d bytes", l)
		}
		if d.err != nil {
			break
		}
		name := b[d.off : d.off+int(l)]
		if f.Name != string(name) { // reuse the old string when unchanged
			f.Name = string(name)
		}
		if !validIfaceName(f.Name) {
			d.fail("bad interface name %q", f.Name)
			break
		}
		d.off += int(l)
		for _, p := range f.fields() {
			*p = d.uvarint()
		}
	}
	if d.err == nil && d.off != len(b) {
		d.fail("%d trailing bytes", len(b)-d.off)
	}
	return d.err
}

// grow returns s resized to n, reusing its storage when it can.
func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// Clone returns a deep copy of s.
func (s *Sample) Clone() Sample {
	c := *s
	c.CPUs = append([]CPU(nil), s.CPUs...)
	c.Ifaces = append([]Iface(nil), s.Ifaces...)
	return c
}
