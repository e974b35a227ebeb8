package config

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/nodespec"
)

// report prints what c means, one keyword-led line per item.
func report(w io.Writer, c *config.Config) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "nodes %d\n", c.NodeCount())
	if r := c.IPRange(); r.IsValid() {
		fmt.Fprintf(b, "iprange %s\n", r)
	}
	for _, r := range c.HostRanges() {
		fmt.Fprintf(b, "hostrange %s\n", r)
	}
	for _, i := range c.Interfaces() {
		fmt.Fprintf(b, "interface %s\n", i)
	}
	p := c.Ports()
	for _, s := range []struct {
		name string
		port uint16
	}{{"beofs2", p.BeoFS2}, {"beostats", p.BeoStats}, {"bproc", p.BProc}, {"http", p.HTTP}, {"kickback", p.Kickback}, {"syslog", p.Syslog}} {
		fmt.Fprintf(b, "server %s %d\n", s.name, s.port)
	}
	fmt.Fprintf(b, "pingtimeout %d\n", int(c.PingTimeout().Seconds()))
	fmt.Fprintf(b, "nodeassign %s\n", c.NodeAssign())
	fmt.Fprintf(b, "ipforward %s\n", map[bool]string{false: "no", true: "yes"}[c.IPForward()])
	if l := c.Libraries(); len(l) > 0 {
		fmt.Fprintf(b, "libraries %s\n", strings.Join(l, " "))
	}
	if m := c.BootModules(); len(m) > 0 {
		fmt.Fprintf(b, "bootmodule %s\n", strings.Join(m, " "))
	}
	if c.MultiMaster() {
		masterOrders(b, c)
	}
	for _, n := range c.Nodes() {
		fmt.Fprintf(b, "node %d addr=%s mac=%s class=%s sequence=%s stage=%s kernel=%s initrd=%s cmdline=%s names=%s line=%d\n",
			n.Num, addrText(n.Addr), macList(n.MACs), word(n.Class), n.Sequence, n.Stage,
			word(n.Kernel.String()), word(n.Initrd.String()), word(n.CmdLine.String()), names(n.Names), n.Line)
	}
	for _, h := range c.Hosts() {
		auto := "no"
		if h.Auto {
			auto = "yes"
		}
		fmt.Fprintf(b, "host %s addr=%s auto=%s names=%s line=%d\n", h.MAC, addrText(h.Addr), auto, word(strings.Join(h.Names, ",")), h.Line)
	}
	for _, m := range c.Ignored() {
		fmt.Fprintf(b, "ignore %s line=%d\n", m, c.Lookup(m).Line)
	}
	return b.Flush()
}

// masterOrders prints, for each list of masters some nodes have, those
// nodes (folded) and the list, primary first ("-" for nodes no
// masterorder line covers: whichever master answers them).
func masterOrders(w io.Writer, c *config.Config) {
	var keys []string
	byOrder := map[string][]int{}
	for n := range c.NodeCount() {
		ms := c.MasterOrder(n)
		k := "-"
		if len(ms) > 0 {
			s := make([]string, len(ms))
			for i, a := range ms {
				s[i] = a.String()
			}
			k = strings.Join(s, ",")
		}
		if _, ok := byOrder[k]; !ok {
			keys = append(keys, k)
		}
		byOrder[k] = append(byOrder[k], n)
	}
	for _, k := range keys {
		fmt.Fprintf(w, "masterorder %s %s\n", nodespec.Fold(byOrder[k]), k)
	}
}

// word returns s as one token: "-" when empty, Go-quoted when it holds
// spaces, quotes or unprintable bytes.
func word(s string) string {
	if s == "" {
		return "-"
	}
	if strings.ContainsAny(s, " \t\"\\") || strconv.Quote(s) != `"`+s+`"` {
		return strconv.Quote(s)
	}
	return s
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}

func macList(ms []config.MAC) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = m.String()
	}
	return word(strings.Join(s, ","))
}

// names formats NAME@ADDR[/GROUP],…
func names(ns []config.Name) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.Name
		if n.Addr.IsValid() {
			s[i] += "@" + n.Addr.String()
		}
		if n.Group != "" {
			s[i] += "/" + n.Group
		}
	}
	return word(strings.Join(s, ","))
}
