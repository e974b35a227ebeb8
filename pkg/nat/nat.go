// Package nat is the master's IP forwarding, what the config's `ipforward`
// turns on: the compute nodes reach the networks beyond the master —
// outbound only, as Scyld's did — and nothing outside reaches a node.
//
// # What it changes, and what it leaves alone
//
// Start sets net.ipv4.ip_forward to 1 and installs one nftables table of
// its own, in one atomic transaction. For cluster interface beo0 on
// 10.99.0.0/24 (`nft list table ip beo-nat` shows):
//
//	table ip beo-nat {
//		chain forward {
//			type filter hook forward priority filter; policy accept;
//			oifname "beo0" iifname != "beo0" ct state established,related accept comment "beo: ip_forward was 0"
//			oifname "beo0" iifname != "beo0" drop
//		}
//		chain postrouting {
//			type nat hook postrouting priority srcnat; policy accept;
//			ip saddr 10.99.0.0/24 oifname != "beo0" masquerade
//		}
//	}
//
// Nodes' packets leaving by any other interface take the master's address
// there (masquerade); replies come back through conntrack; a connection
// that starts outside and would leave by the cluster interface is dropped
// (even from a host that routes the cluster prefix to the master). Both
// chains' policy is accept, so traffic that does not involve the cluster
// interface passes as if the table were not there. Close deletes the
// table and puts ip_forward back to what Start found.
//
// The table is the only thing beo touches: no other table, chain or rule
// is read, flushed or changed, so the admin's own firewall (nft, iptables-
// nft, firewalld, docker) keeps working beside it. The flip side: a packet
// must pass every base chain on a hook, so a forward chain of someone else
// whose policy is drop (docker sets one) also drops the nodes' traffic;
// allow it there (for instance `iifname beo0 accept`) — beo will not.
//
// # Crashes
//
// A master that dies without Close (SIGKILL, a panic) leaves the table
// and ip_forward behind. Start removes a table of the same name in the
// same transaction that installs the new one, and reads the ip_forward
// value to restore from the stale table's comment, so the next clean stop
// still restores the value the host had before beo first changed it.
//
// # Why nftables, through google/nftables
//
// The kernel's nf_tables netlink API is what `nft` itself speaks; a table
// of beo's own is created and deleted whole, so nothing has to be parsed
// or merged. github.com/google/nftables is a maintained pure-Go client of
// that API (no nft binary, no cgo, works inside a network namespace).
package nat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// DefaultTable is the name of beo's table (family ip).
const DefaultTable = "beo-nat"

// DefaultSysctl is the IPv4 forwarding switch of the network namespace.
const DefaultSysctl = "/proc/sys/net/ipv4/ip_forward"

// commentPrefix starts the forward chain's first rule's comment, which
// records the ip_forward value to restore.
const commentPrefix = "beo: ip_forward was "

// Config says what to forward.
type Config struct {
	// Cluster is the cluster network: the master's address and prefix on
	// the cluster interface (10.99.0.1/24); its masked prefix is
	// masqueraded. IPv4 only.
	Cluster netip.Prefix
	// Iface is the cluster interface: traffic from the cluster network
	// leaving by any other interface is masqueraded, traffic from any
	// other interface leaving by it is dropped unless it is a reply.
	Iface  string
	Table  string // "" = DefaultTable
	Sysctl string // "" = DefaultSysctl
	Log    *slog.Logger
}

// NAT is installed forwarding; Close removes it.
type NAT struct {
	c     Config
	table *nftables.Table
	prev  string // ip_forward before Start: "0" or "1"
	once  sync.Once
	err   error
}

// Start installs the table and turns on forwarding (see the package doc).
func Start(c Config) (*NAT, error) {
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.Sysctl == "" {
		c.Sysctl = DefaultSysctl
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if !c.Cluster.IsValid() || !c.Cluster.Addr().Is4() {
		return nil, fmt.Errorf("nat: cluster network %v is not an IPv4 prefix", c.Cluster)
	}
	if c.Iface == "" || len(c.Iface) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("nat: bad cluster interface name %q", c.Iface)
	}
	prev, err := readSysctl(c.Sysctl)
	if err != nil {
		return nil, err
	}
	conn, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nat: nftables: %w", err)
	}
	stale, was, err := findStale(conn, c.Table)
	if err != nil {
		return nil, err
	}
	if stale != nil {
		if was != "" {
			prev = was
		}
		c.Log.Warn("removing a stale nftables table left by a master that did not stop cleanly",
			"table", "ip "+c.Table, "ip_forward_before", prev)
		conn.DelTable(stale)
	}
	n := &NAT{c: c, prev: prev}
	n.table = install(conn, c, prev)
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("nat: install table ip %s: %w", c.Table, err)
	}
	if err := writeSysctl(c.Sysctl, "1"); err != nil {
		n.Close()
		return nil, err
	}
	c.Log.Info("forwarding the cluster network", "iface", c.Iface, "net", c.Cluster.Masked(),
		"table", "ip "+c.Table, "ip_forward_before", prev)
	return n, nil
}

// Serve installs forwarding, holds it until ctx ends, then removes it: a
// daemon for `beo master`'s list.
func Serve(ctx context.Context, c Config) error {
	n, err := Start(c)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return n.Close()
}

// Close deletes the table and restores ip_forward. It is safe to call
// more than once.
func (n *NAT) Close() error {
	n.once.Do(func() {
		var errs []error
		conn, err := nftables.New()
		if err == nil {
			conn.DelTable(n.table)
			err = conn.Flush()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("nat: delete table ip %s: %w", n.c.Table, err))
		}
		if n.prev != "1" {
			if err := writeSysctl(n.c.Sysctl, n.prev); err != nil {
				errs = append(errs, err)
			}
		}
		n.err = errors.Join(errs...)
		if n.err == nil {
			n.c.Log.Info("stopped forwarding the cluster network", "table", "ip "+n.c.Table, "ip_forward", n.prev)
		}
	})
	return n.err
}

// install queues the table, its chains and rules on conn.
func install(conn *nftables.Conn, c Config, prev string) *nftables.Table {
	t := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: c.Table})
	accept := nftables.ChainPolicyAccept
	fwd := conn.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	post := conn.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept})
	inbound := append(ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, c.Iface), ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, c.Iface)...)
	conn.AddRule(&nftables.Rule{Table: t, Chain: fwd,
		Exprs:    concat(inbound, ctReply(), verdict(expr.VerdictAccept)),
		UserData: userdata.AppendString(nil, userdata.TypeComment, commentPrefix+prev)})
	conn.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: concat(inbound, verdict(expr.VerdictDrop))})
	conn.AddRule(&nftables.Rule{Table: t, Chain: post,
		Exprs: concat(saddrIn(c.Cluster.Masked()), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, c.Iface), []expr.Any{&expr.Masq{}})})
	return t
}

func concat(parts ...[]expr.Any) []expr.Any {
	var all []expr.Any
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// ifname matches the input or output interface name (key) against name.
func ifname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: b}}
}

// saddrIn matches an IPv4 source address inside p.
func saddrIn(p netip.Prefix) []expr.Any {
	a := p.Addr().As4()
	mask := netipMask(p.Bits())
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}

func netipMask(bits int) []byte {
	m := make([]byte, 4)
	for i := range bits {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// ctReply matches conntrack state established or related.
func ctReply() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

// findStale returns the table named name (family ip) if it exists, and
// the ip_forward value its comment recorded ("" when none).
func findStale(conn *nftables.Conn, name string) (*nftables.Table, string, error) {
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, "", fmt.Errorf("nat: list nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name != name {
			continue
		}
		rules, err := conn.GetRules(t, &nftables.Chain{Name: "forward", Table: t})
		if err != nil {
			return t, "", nil // a table without our chain: still ours to replace
		}
		for _, r := range rules {
			if c, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok {
				if v, ok := strings.CutPrefix(c, commentPrefix); ok && (v == "0" || v == "1") {
					return t, v, nil
				}
			}
		}
		return t, "", nil
	}
	return nil, "", nil
}

func readSysctl(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("nat: %w", err)
	}
	v := string(bytes.TrimSpace(b))
	if v != "0" && v != "1" {
		return "", fmt.Errorf("nat: %s: unexpected value %q", path, v)
	}
	return v, nil
}

func writeSysctl(path, v string) error {
	if err := os.WriteFile(path, []byte(v+"\n"), 0o644); err != nil {
		return fmt.Errorf("nat: set %s to %s: %w", path, v, err)
	}
	return nil
}
