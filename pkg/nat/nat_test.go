package nat

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// envNetns marks the test process re-run inside a network namespace of
// its own.
const envNetns = "BEO_NAT_TEST_NETNS"

// inNetns runs the calling test again in a new network namespace
// (`unshare --net`, root only) and reports false; in that re-run it
// reports true and the test does its work there, where it can change
// nftables and ip_forward without touching the host.
func inNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(envNetns) == "1" {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs in a network namespace of its own")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	cmd := exec.Command("unshare", "--net", os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envNetns+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("in a new network namespace: %v\n%s", err, out)
	}
	return false
}

var cluster = netip.MustParsePrefix("10.99.0.1/24")

func testConfig() Config { return Config{Cluster: cluster, Iface: "beo0"} }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func setForward(t *testing.T, v string) {
	t.Helper()
	must(t, writeSysctl(DefaultSysctl, v))
}

func forward(t *testing.T) string {
	t.Helper()
	v, err := readSysctl(DefaultSysctl)
	must(t, err)
	return v
}

// tables lists the names of the namespace's tables, every family.
func tables(t *testing.T) []string {
	t.Helper()
	conn, err := nftables.New()
	must(t, err)
	ts, err := conn.ListTables()
	must(t, err)
	var names []string
	for _, tb := range ts {
		names = append(names, tb.Name)
	}
	return names
}

// decoy installs someone else's table, a forward chain with policy drop
// and one rule, to check that nat leaves it alone.
func decoy(t *testing.T) *nftables.Table {
	t.Helper()
	conn, err := nftables.New()
	must(t, err)
	tb := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "admin"})
	drop := nftables.ChainPolicyDrop
	ch := conn.AddChain(&nftables.Chain{Name: "fwd", Table: tb, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &drop})
	conn.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}})
	must(t, conn.Flush())
	return tb
}

func decoyIntact(t *testing.T, tb *nftables.Table) {
	t.Helper()
	conn, err := nftables.New()
	must(t, err)
	ch, err := conn.ListChain(tb, "fwd")
	if err != nil {
		t.Fatalf("the admin's chain: %v", err)
	}
	if ch.Policy == nil || *ch.Policy != nftables.ChainPolicyDrop {
		t.Errorf("the admin's chain policy changed: %v", ch.Policy)
	}
	rules, err := conn.GetRules(tb, ch)
	if err != nil || len(rules) != 1 {
		t.Errorf("the admin's rules: got %d, %v; want 1", len(rules), err)
	}
}

func TestStartClose(t *testing.T) {
	if !inNetns(t) {
		return
	}
	setForward(t, "0")
	admin := decoy(t)
	n, err := Start(testConfig())
	must(t, err)
	if got := forward(t); got != "1" {
		t.Errorf("ip_forward after Start: got %s, want 1", got)
	}
	conn, err := nftables.New()
	must(t, err)
	tb, err := conn.ListTableOfFamily(DefaultTable, nftables.TableFamilyIPv4)
	must(t, err)
	for chain, want := range map[string]int{"forward": 2, "postrouting": 1} {
		rules, err := conn.GetRules(tb, &nftables.Chain{Name: chain, Table: tb})
		if err != nil || len(rules) != want {
			t.Errorf("chain %s: got %d rules, %v; want %d", chain, len(rules), err, want)
		}
	}
	if _, err := exec.LookPath("nft"); err == nil {
		out, err := exec.Command("nft", "list", "table", "ip", DefaultTable).CombinedOutput()
		must(t, err)
		got := strings.Join(strings.Fields(string(out)), " ")
		for _, want := range []string{
			"type filter hook forward priority filter; policy accept;",
			`oifname "beo0" iifname != "beo0" ct state established,related accept comment "beo: ip_forward was 0"`,
			`oifname "beo0" iifname != "beo0" drop`,
			"type nat hook postrouting priority srcnat; policy accept;",
			`ip saddr 10.99.0.0/24 oifname != "beo0" masquerade`,
		} {
			if !strings.Contains(got, want) {
				t.Errorf("nft list table lacks %q:\n%s", want, out)
			}
		}
	}
	decoyIntact(t, admin)

	must(t, n.Close())
	must(t, n.Close()) // twice is fine
	if got := strings.Join(tables(t), " "); got != "admin" {
		t.Errorf("tables after Close: got %q, want only the admin's", got)
	}
	if got := forward(t); got != "0" {
		t.Errorf("ip_forward after Close: got %s, want 0 again", got)
	}
	decoyIntact(t, admin)
}

// TestStale: a master that died without Close left its table and
// ip_forward=1; the next Start replaces the table and its Close still
// restores the value from before the first Start.
func TestStale(t *testing.T) {
	if !inNetns(t) {
		return
	}
	setForward(t, "0")
	if _, err := Start(testConfig()); err != nil { // and "crash"
		t.Fatal(err)
	}
	if got := forward(t); got != "1" {
		t.Fatalf("ip_forward after the first Start: got %s, want 1", got)
	}
	n, err := Start(testConfig())
	must(t, err)
	if got := strings.Join(tables(t), " "); got != DefaultTable {
		t.Errorf("tables after a second Start: got %q, want one %s", got, DefaultTable)
	}
	must(t, n.Close())
	if got := forward(t); got != "0" {
		t.Errorf("ip_forward after Close: got %s, want 0 (from before the crash)", got)
	}
	if got := tables(t); len(got) != 0 {
		t.Errorf("tables after Close: got %q, want none", got)
	}
}

// TestForwardWasOn: a host that forwarded before keeps forwarding.
func TestForwardWasOn(t *testing.T) {
	if !inNetns(t) {
		return
	}
	setForward(t, "1")
	n, err := Start(testConfig())
	must(t, err)
	must(t, n.Close())
	if got := forward(t); got != "1" {
		t.Errorf("ip_forward after Close: got %s, want 1 as before", got)
	}
}

func TestConfigRefused(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		want string
	}{
		{"no prefix", Config{Iface: "beo0"}, "not an IPv4 prefix"},
		{"IPv6", Config{Cluster: netip.MustParsePrefix("fd00::1/64"), Iface: "beo0"}, "not an IPv4 prefix"},
		{"no interface", Config{Cluster: cluster}, "bad cluster interface name"},
		{"long interface", Config{Cluster: cluster, Iface: "averyveryverylongname"}, "bad cluster interface name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Start(tt.c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				if n != nil {
					n.Close()
				}
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
