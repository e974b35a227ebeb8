package config

import (
	"fmt"
	"net"
)

// MAC is an Ethernet (EUI-48) hardware address. Unlike net.HardwareAddr it
// is comparable, so it keys maps; String gives the lower-case colon form.
type MAC [6]byte

// ParseMAC parses a 6-byte address in any form net.ParseMAC accepts:
// 00:A0:D1:E5:C4:6E, 00-a0-d1-e5-c4-6e or 00a0.d1e5.c46e.
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return MAC{}, fmt.Errorf("malformed MAC %q", s)
	}
	if len(hw) != len(MAC{}) {
		return MAC{}, fmt.Errorf("MAC %q is not a 6-byte Ethernet address", s)
	}
	var m MAC
	copy(m[:], hw)
	return m, nil
}

// String returns the address as 00:a0:d1:e5:c4:6e.
func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// HardwareAddr returns a fresh net.HardwareAddr holding m.
func (m MAC) HardwareAddr() net.HardwareAddr { return append(net.HardwareAddr(nil), m[:]...) }
