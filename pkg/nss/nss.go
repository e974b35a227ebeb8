// Package nss is beonss: the cluster's names — `.4`, `n4`, `n4-ipmi`,
// `master`, `.-1`, host devices, their Ethernet addresses, the netgroup
// `cluster` — and the files through which the stock glibc tools see them,
// on the master and on every node.
//
// # Mechanism: generated files
//
// ClusterWare's beonss was a glibc NSS module. beo is one static Go
// binary and loads nothing into other programs, so it writes the name data
// into the files glibc's "files" backend already reads:
//
//	/etc/hosts     a managed block between "# BEGIN beo" and "# END beo"
//	/etc/ethers    the same, MAC → name
//	/etc/netgroup  the same, one line per netgroup: `cluster (n0,,) (n1,,) …`
//	/etc/nsswitch.conf  `files` is made a source of hosts, ethers, netgroup,
//	               passwd and group (Debian ships `netgroup: nis`)
//
// Lines outside the block are the admin's and are never touched; the
// block is replaced as a whole, the file rewritten atomically (temporary
// file, fsync, rename, directory fsync), so a reader sees the old file or
// the new one. A BEGIN without its END is an error, never a guess.
//
// Why not a DNS responder: glibc's DNS backend refuses names with an empty
// label, and `.4` and `.-1` begin with one, so `getent hosts .4` can only
// come from files (or an NSS module). The files backend matches the
// canonical name and every alias literally and case-insensitively, answers
// reverse lookups from the same lines, and needs no daemon on the lookup
// path: names keep working while the master is away. The cost is a linear
// scan — one line per node and nodename pattern — which for thousands of
// nodes is still a few milliseconds per lookup.
//
// # Names
//
// Node N at address A (config.NodeAddr) gets one hosts line:
//
//	A  CANON [other offset-0 nodename names] .N
//
// CANON is the first `nodename` pattern with offset 0 applied to N (n4),
// else `.N`; a reverse lookup of A answers CANON. Every nodename line with
// an offset gets its own line at A+offset (`n4-ipmi`). The master, at its
// cluster address, is `master .-1`. A host line's names go on its
// address. Every node slot below NodeCount is named, configured or not, as
// ClusterWare's did: names follow the iprange.
//
// Ethers: each configured node's MACs map to CANON, each host device's MAC
// to its first name (its address when it has none). Netgroups: `cluster`
// holds every node's CANON; a nodename line with a GROUP puts its names in
// that netgroup.
//
// # Users
//
// Users are not in the generated files: on the master they are whatever
// the master's NSS says; on a node, kickbackproxy (pkg/kickback) fetches
// the passwd and group entries of a user with a job on that node and
// upserts them into the node's /etc/passwd and /etc/group (UpsertUser,
// UpsertGroup). See pkg/kickback.
package nss

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/beo-cluster/beo/pkg/config"
)

// Data is the cluster's name data.
type Data struct {
	Hosts     []Host     `json:"hosts"`
	Ethers    []Ether    `json:"ethers,omitempty"`
	Netgroups []Netgroup `json:"netgroups,omitempty"`
}

// Host is one hosts line: an address and its names, canonical first.
type Host struct {
	Addr  netip.Addr `json:"addr"`
	Names []string   `json:"names"`
}

// Ether is one ethers line.
type Ether struct {
	MAC  string `json:"mac"` // 00:a0:d1:e5:c4:6e
	Name string `json:"name"`
}

// Netgroup is one netgroup of hosts.
type Netgroup struct {
	Name  string   `json:"name"`
	Hosts []string `json:"hosts"`
}

// ClusterGroup is the netgroup holding every node.
const ClusterGroup = "cluster"

// MasterName is the master's name; ".-1" is its other one.
const MasterName = "master"

// FromConfig builds the name data of cfg. master is the master's address
// on the cluster network; without one (invalid) there are no master names.
func FromConfig(cfg *config.Config, master netip.Addr) Data {
	var d Data
	if master.IsValid() {
		d.Hosts = append(d.Hosts, Host{Addr: master.Unmap(), Names: []string{MasterName, ".-1"}})
	}
	pats := cfg.NodeNames()
	groups := map[string][]string{}
	var groupOrder []string
	addToGroup := func(g, name string) {
		if _, ok := groups[g]; !ok {
			groupOrder = append(groupOrder, g)
		}
		groups[g] = append(groups[g], name)
	}
	groups[ClusterGroup], groupOrder = nil, []string{ClusterGroup}
	var offset []Host
	for n := range cfg.NodeCount() {
		a, ok := cfg.NodeAddr(n)
		if !ok {
			break
		}
		names := nodeNames(pats, n)
		d.Hosts = append(d.Hosts, Host{Addr: a, Names: names})
		addToGroup(ClusterGroup, names[0])
		for _, p := range pats {
			name := strings.ReplaceAll(p.Pattern, "%N", strconv.Itoa(n))
			if p.Offset != 0 {
				if oa, ok := addOffset(a, p.Offset); ok {
					offset = append(offset, Host{Addr: oa, Names: []string{name}})
				}
			}
			if p.Group != "" {
				addToGroup(p.Group, name)
			}
		}
	}
	d.Hosts = append(d.Hosts, offset...)
	for _, h := range cfg.Hosts() {
		if h.Addr.IsValid() && len(h.Names) > 0 {
			d.Hosts = append(d.Hosts, Host{Addr: h.Addr, Names: slices.Clone(h.Names)})
		}
		name := h.Addr.String()
		if len(h.Names) > 0 {
			name = h.Names[0]
		}
		if h.Addr.IsValid() || len(h.Names) > 0 {
			d.Ethers = append(d.Ethers, Ether{MAC: h.MAC.String(), Name: name})
		}
	}
	for _, s := range cfg.Nodes() {
		if !s.Addr.IsValid() {
			continue
		}
		canon := nodeNames(pats, s.Num)[0]
		for _, m := range s.MACs {
			d.Ethers = append(d.Ethers, Ether{MAC: m.String(), Name: canon})
		}
	}
	for _, g := range groupOrder {
		d.Netgroups = append(d.Netgroups, Netgroup{Name: g, Hosts: groups[g]})
	}
	return d
}

// nodeNames returns node n's names on its own address: the offset-0
// nodename names in file order, then .N.
func nodeNames(pats []config.NamePattern, n int) []string {
	var names []string
	for _, p := range pats {
		if p.Offset == 0 {
			names = append(names, strings.ReplaceAll(p.Pattern, "%N", strconv.Itoa(n)))
		}
	}
	return append(names, "."+strconv.Itoa(n))
}

func addOffset(a netip.Addr, off uint32) (netip.Addr, bool) {
	if !a.Is4() {
		return netip.Addr{}, false
	}
	b := a.As4()
	s := uint64(binary.BigEndian.Uint32(b[:])) + uint64(off)
	if s > math.MaxUint32 {
		return netip.Addr{}, false
	}
	binary.BigEndian.PutUint32(b[:], uint32(s))
	return netip.AddrFrom4(b), true
}

// Validate checks data received from elsewhere (a kickback reply) before it
// goes into files: every name must be a plain host name (or .N / .-1),
// every address valid, every MAC parseable. A name with a space, '#',
// '(' or a newline could otherwise forge lines in /etc/hosts.
func (d Data) Validate() error {
	for _, h := range d.Hosts {
		if !h.Addr.IsValid() || h.Addr.Zone() != "" {
			return fmt.Errorf("hosts: bad address %q", h.Addr)
		}
		if len(h.Names) == 0 {
			return fmt.Errorf("hosts: %s has no name", h.Addr)
		}
		for _, n := range h.Names {
			if !ValidName(n) {
				return fmt.Errorf("hosts: %s: bad name %q", h.Addr, n)
			}
		}
	}
	for _, e := range d.Ethers {
		if _, err := config.ParseMAC(e.MAC); err != nil {
			return fmt.Errorf("ethers: %w", err)
		}
		if !ValidName(e.Name) {
			return fmt.Errorf("ethers: %s: bad name %q", e.MAC, e.Name)
		}
	}
	for _, g := range d.Netgroups {
		if !ValidName(g.Name) || strings.HasPrefix(g.Name, ".") {
			return fmt.Errorf("netgroup: bad name %q", g.Name)
		}
		for _, h := range g.Hosts {
			if !ValidName(h) {
				return fmt.Errorf("netgroup %s: bad host %q", g.Name, h)
			}
		}
	}
	return nil
}

// ValidName reports whether s may stand in the generated files: 1–253
// bytes of letters, digits, '-', '_', '.', or an address literal's ':'.
func ValidName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}
