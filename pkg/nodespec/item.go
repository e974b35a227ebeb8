package nodespec

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// parser expands the items of one spec against one view of the cluster.
type parser struct {
	count int
	c     Cluster
	known []string // nil: any state name is accepted
}

// item appends the nodes of one non-empty, trimmed item to out.
func (p *parser) item(out []int, item string) ([]int, error) {
	word := strings.ToLower(item)
	switch {
	case word == "master" || word == "-1" || word == ".-1":
		return append(out, Master), nil
	case word == "all":
		for n := range p.count {
			out = append(out, n)
		}
		return out, nil
	case strings.HasPrefix(word, "all"):
		return p.class(out, item, word[len("all"):])
	}

	first, last, isRange := strings.Cut(item, "-")
	lo, err := p.node(item, first)
	if err != nil {
		return nil, err
	}
	hi := lo
	switch {
	case isRange && last == "": // "4-": to the last node
		hi = p.count - 1
	case isRange:
		if hi, err = p.node(item, last); err != nil {
			return nil, err
		}
		if hi < lo {
			return nil, fmt.Errorf("bad node range %q: %d is above %d", item, lo, hi)
		}
	}
	for n := lo; n <= hi; n++ {
		out = append(out, n)
	}
	return out, nil
}

// node reads one compute node number, "5", ".5" or "n5", that must exist.
func (p *parser) node(item, s string) (int, error) {
	digits := s
	if len(digits) > 0 && (digits[0] == '.' || digits[0] == 'n' || digits[0] == 'N') {
		digits = digits[1:]
	}
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, fmt.Errorf("bad node spec item %q", item)
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n >= p.count { // Atoi fails here only on overflow
		return 0, fmt.Errorf("node %s: no such node (cluster has %s)", digits, plural(p.count))
	}
	return n, nil
}

// class appends every node in (or, after "not", out of) state; item is the
// whole item for messages, state the lower-cased text after "all".
func (p *parser) class(out []int, item, state string) ([]int, error) {
	invert := false
	if strings.HasPrefix(state, "not") && !p.listed(state) {
		invert, state = true, state[len("not"):]
	}
	if !isStateName(state) {
		return nil, fmt.Errorf("bad node spec item %q", item)
	}
	if !p.isKnown(state) {
		return nil, fmt.Errorf("bad node spec item %q: unknown state %q (known: %s)",
			item, state, strings.Join(p.known, ", "))
	}
	for n := range p.count {
		if strings.EqualFold(p.c.State(n), state) != invert {
			out = append(out, n)
		}
	}
	return out, nil
}

// isKnown reports whether state is a valid state name, which it is when
// the cluster does not list its states.
func (p *parser) isKnown(state string) bool { return p.known == nil || p.listed(state) }

// listed reports whether the cluster lists state among its states.
func (p *parser) listed(state string) bool {
	return slices.ContainsFunc(p.known, func(k string) bool { return strings.EqualFold(k, state) })
}

// isStateName reports whether s is shaped like a state name: a letter, then
// letters, digits and underscores (BProc's rule).
func isStateName(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !('0' <= c && c <= '9') && c != '_' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func plural(n int) string {
	if n == 1 {
		return "1 node"
	}
	return strconv.Itoa(n) + " nodes"
}
