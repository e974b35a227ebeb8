package nss

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/beo-cluster/beo/pkg/config"
)

// Resolver answers the other question: which node is NAME? It knows every
// name beonss gives a node — `.N`, the nodename aliases (`n4`, and
// `n4-ipmi` at an offset: node 4's other interface is still node 4), its
// address — plus `N` alone and `nN` (the usual alias, accepted even
// without a nodename line, as node specs accept it), `master`, `.-1`,
// `-1`, `localhost` and the master's own host names and addresses for the
// master (-1). A name none of these match is looked up in the system's
// resolver (an admin's alias in /etc/hosts, a domain name) and matched by
// address; a dotted name that is not an address is also tried by its
// first label (n4.cluster → n4), as OpenMPI cuts host names.
type Resolver struct {
	// Count is the number of compute nodes, 0…Count-1.
	Count int
	// Config gives the nodename patterns, host lines and node addresses;
	// nil: only the built-in forms and Addrs.
	Config *config.Config
	// Master is the master's cluster address (invalid: unknown).
	Master netip.Addr
	// Addrs are node addresses known besides the config's (from the
	// master's node table): address → node.
	Addrs map[netip.Addr]int
	// Lookup resolves a host name to addresses; nil means the system's
	// resolver, with a 2 s limit.
	Lookup func(name string) ([]netip.Addr, error)
	// Hostname returns this host's name; nil means os.Hostname.
	Hostname func() (string, error)
}

// NotNodeError says that a name is no node's.
type NotNodeError struct {
	Name string
	Why  string
}

func (e *NotNodeError) Error() string {
	return fmt.Sprintf("%s: %s", e.Name, e.Why)
}

// Node returns the node NAME names, -1 for the master, or a
// *NotNodeError.
func (r *Resolver) Node(name string) (int, error) {
	n, ok, err := r.node(strings.TrimSuffix(strings.TrimSpace(name), "."), true)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, &NotNodeError{Name: name, Why: "not a node of this cluster (a node is N, .N, nN, a nodename alias or a node's address; the master is master, .-1 or -1)"}
	}
	return n, nil
}

func (r *Resolver) node(name string, lookup bool) (int, bool, error) {
	lower := strings.ToLower(name)
	switch lower {
	case "", ".":
		return 0, false, nil
	case MasterName, ".-1", "-1", "localhost", "localhost.localdomain":
		return -1, true, nil
	}
	if num, ok := number(strings.TrimPrefix(lower, ".")); ok {
		return r.check(name, num)
	}
	if rest, ok := strings.CutPrefix(lower, "n"); ok {
		if num, ok := number(rest); ok {
			return r.check(name, num)
		}
	}
	if r.Config != nil {
		for _, p := range r.Config.NodeNames() {
			pre, suf, ok := strings.Cut(strings.ToLower(p.Pattern), "%n")
			if !ok || !strings.HasPrefix(lower, pre) || !strings.HasSuffix(lower, suf) || len(lower) <= len(pre)+len(suf) {
				continue
			}
			if num, ok := number(lower[len(pre) : len(lower)-len(suf)]); ok {
				return r.check(name, num)
			}
		}
	}
	if a, err := netip.ParseAddr(name); err == nil {
		return r.byAddr(name, a)
	}
	if r.Config != nil {
		for _, h := range r.Config.Hosts() {
			for _, hn := range h.Names {
				if strings.EqualFold(hn, name) {
					return 0, false, &NotNodeError{Name: name, Why: fmt.Sprintf("a host device of the config (line %d), not a node", h.Line)}
				}
			}
		}
	}
	if hostname := r.hostname(); hostname != "" {
		short, _, _ := strings.Cut(hostname, ".")
		if strings.EqualFold(name, hostname) || strings.EqualFold(name, short) {
			return -1, true, nil
		}
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if n, ok, err := r.node(name[:i], false); ok || err != nil {
			return n, ok, err
		}
	}
	if !lookup {
		return 0, false, nil
	}
	addrs, err := r.lookup(name)
	if err != nil || len(addrs) == 0 {
		return 0, false, nil
	}
	for _, a := range addrs {
		if n, ok, err := r.byAddr(name, a); ok || err != nil {
			return n, ok, err
		}
	}
	return 0, false, nil
}

// check accepts node num if the cluster has it.
func (r *Resolver) check(name string, num int) (int, bool, error) {
	if num >= r.Count {
		return 0, false, &NotNodeError{Name: name, Why: fmt.Sprintf("no such node (the cluster has %d)", r.Count)}
	}
	return num, true, nil
}

// byAddr finds the node at address a: a node's address or a nodename
// alias's (at its offset), the master's address, or one of this host's.
func (r *Resolver) byAddr(name string, a netip.Addr) (int, bool, error) {
	a = a.Unmap()
	if r.Master.IsValid() && a == r.Master.Unmap() {
		return -1, true, nil
	}
	if n, ok := r.Addrs[a]; ok {
		return r.check(name, n)
	}
	if r.Config != nil {
		if n, ok := r.Config.NodeByAddr(a); ok {
			return r.check(name, n)
		}
		for _, p := range r.Config.NodeNames() {
			if p.Offset == 0 || !a.Is4() {
				continue
			}
			b := a.As4()
			v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			if v < p.Offset {
				continue
			}
			v -= p.Offset
			if n, ok := r.Config.NodeByAddr(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})); ok {
				return r.check(name, n)
			}
		}
	}
	if hostLoopback(a) || local(a) {
		return -1, true, nil
	}
	return 0, false, nil
}

// hostLoopback reports whether a is a loopback address that names this
// host: ::1, 127.0.0.0/24 (127.0.0.1, and beo sim's masters at 127.0.0.1+i)
// and 127.0.1.0/24 (Debian's /etc/hosts gives the host name 127.0.1.1).
// The rest of 127/8 is no name of the master: beo sim's nodes live there
// (127.1.0.0+N), and an address in that block that is not a node must not
// quietly run a job's ranks on the master.
func hostLoopback(a netip.Addr) bool {
	if a == netip.IPv6Loopback() {
		return true
	}
	for _, p := range []netip.Prefix{netip.MustParsePrefix("127.0.0.0/24"), netip.MustParsePrefix("127.0.1.0/24")} {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// local reports whether a is an address of this host.
func local(a netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil && p.Addr().Unmap() == a {
			return true
		}
	}
	return false
}

func (r *Resolver) hostname() string {
	f := r.Hostname
	if f == nil {
		f = os.Hostname
	}
	h, err := f()
	if err != nil {
		return ""
	}
	return h
}

func (r *Resolver) lookup(name string) ([]netip.Addr, error) {
	if r.Lookup != nil {
		return r.Lookup(name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return net.DefaultResolver.LookupNetIP(ctx, "ip", name)
}

// number reads a node number: decimal digits, no sign, no leading zero
// beyond "0" itself.
func number(s string) (int, bool) {
	if s == "" || len(s) > 7 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// ResolverFor returns the resolver of the cluster a master describes:
// its nodes' addresses (node → address, from its status), its cluster
// address, and the config file it runs with (when this process can read
// it; without it the nodename aliases other than nN are unknown).
func ResolverFor(count int, addrs map[int]string, masterAddr, configPath string) *Resolver {
	r := &Resolver{Count: count, Addrs: map[netip.Addr]int{}}
	if a, err := netip.ParseAddr(masterAddr); err == nil {
		r.Master = a
	}
	for n, s := range addrs {
		if a, err := netip.ParseAddr(s); err == nil {
			r.Addrs[a.Unmap()] = n
		}
	}
	if configPath != "" {
		var opt config.Options
		if r.Master.IsValid() {
			opt.Masters = []netip.Addr{r.Master}
		}
		if cfg, _ := config.Load(configPath, opt); cfg != nil {
			r.Config = cfg
		}
	}
	return r
}
