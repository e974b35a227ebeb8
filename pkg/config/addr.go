package config

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
)

// Range is an inclusive range of IPv4 addresses, from an iprange or a
// hostrange line.
type Range struct {
	From, To netip.Addr
	Line     int // the line that defined it
}

// IsValid reports whether r was configured.
func (r Range) IsValid() bool { return r.From.IsValid() && r.To.IsValid() }

// Contains reports whether a lies in r.
func (r Range) Contains(a netip.Addr) bool {
	a = a.Unmap()
	return r.IsValid() && a.Is4() && r.From.Compare(a) <= 0 && a.Compare(r.To) <= 0
}

// Overlaps reports whether r and o share an address.
func (r Range) Overlaps(o Range) bool {
	return r.IsValid() && o.IsValid() && r.From.Compare(o.To) <= 0 && o.From.Compare(r.To) <= 0
}

// Size is the number of addresses in r, 0 when r is not configured.
func (r Range) Size() uint64 {
	if !r.IsValid() {
		return 0
	}
	return uint64(u32(r.To)) - uint64(u32(r.From)) + 1
}

// String returns "FROM TO", the form the directive takes.
func (r Range) String() string { return r.From.String() + " " + r.To.String() }

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// addOffset returns a+n, or false when that leaves the IPv4 space.
func addOffset(a netip.Addr, n uint64) (netip.Addr, bool) {
	s := uint64(u32(a)) + n
	if !a.Is4() || s > math.MaxUint32 {
		return netip.Addr{}, false
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(s))
	return netip.AddrFrom4(b), true
}

// parseIPv4 parses a dotted-quad IPv4 address.
func parseIPv4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Errorf("malformed IP address %q", s)
	case !a.Is4():
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address", s)
	}
	return a, nil
}

// looksLikeAddr reports whether s was probably meant as an IP address:
// only digits and dots, or hex digits and colons (IPv6).
func looksLikeAddr(s string) bool {
	return strings.Trim(s, "0123456789.") == "" || (strings.Contains(s, ":") && strings.Trim(s, "0123456789abcdefABCDEF:.") == "")
}

// parseOffset parses a nodename offset: an IPv4-style 0.0.1.0 (= 256) or a
// decimal integer below 2³².
func parseOffset(s string) (uint32, bool) {
	if strings.Contains(s, ".") {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return 0, false
		}
		return u32(a), true
	}
	if !isDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// isDigits reports whether s is a non-empty run of decimal digits.
func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// parseNum parses a decimal number in [lo, hi].
func parseNum(s string, lo, hi int) (int, error) {
	if !isDigits(s) {
		return 0, fmt.Errorf("malformed number %q", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("number %s out of range %d-%d", s, lo, hi)
	}
	return n, nil
}
