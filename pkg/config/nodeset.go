package config

import (
	"fmt"
	"strconv"
	"strings"
)

// NodeSet selects the nodes a kernelimage, initrdimage or kernelcommandline
// line applies to: a comma list of numbers and ranges, "15", "10-20",
// "1,3,10-20".
type NodeSet []NodeRange

// NodeRange is the inclusive range Lo-Hi of node numbers (Lo == Hi for one node).
type NodeRange struct{ Lo, Hi int }

// ParseNodeSet parses the node part of a per-node directive.
func ParseNodeSet(s string) (NodeSet, error) {
	var set NodeSet
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		a, err := parseNum(lo, 0, MaxNodes-1)
		if err != nil {
			return nil, fmt.Errorf("bad node spec %q: %w", s, err)
		}
		b, err := parseNum(hi, 0, MaxNodes-1)
		if err != nil {
			return nil, fmt.Errorf("bad node spec %q: %w", s, err)
		}
		if b < a {
			return nil, fmt.Errorf("bad node spec %q: range %s ends before it starts", s, part)
		}
		set = append(set, NodeRange{a, b})
	}
	return set, nil
}

// nodeSetSyntax reports whether s is shaped like a node spec (a digit first,
// then only digits, '-' and ','), which makes it one in kernelcommandline.
func nodeSetSyntax(s string) bool {
	return s != "" && s[0] >= '0' && s[0] <= '9' && strings.Trim(s, "0123456789-,") == ""
}

// Contains reports whether node n is in s.
func (s NodeSet) Contains(n int) bool {
	for _, r := range s {
		if r.Lo <= n && n <= r.Hi {
			return true
		}
	}
	return false
}

// String returns s in the file's syntax.
func (s NodeSet) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		parts[i] = strconv.Itoa(r.Lo)
		if r.Hi != r.Lo {
			parts[i] += "-" + strconv.Itoa(r.Hi)
		}
	}
	return strings.Join(parts, ",")
}
