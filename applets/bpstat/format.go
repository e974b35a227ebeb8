package bpstat

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/nodes"
	"github.com/beo-cluster/beo/pkg/nodespec"
)

// stateOrder is the order of the compact listing's groups.
var stateOrder = []string{"down", "unavailable", "error", "up", "[up]", "boot", "reboot", "halt", "pwroff", "alive"}

func stateRank(s string) int {
	if i := slices.Index(stateOrder, s); i >= 0 {
		return i
	}
	return len(stateOrder)
}

func modeString(m uint32) string { return nodes.FormatMode(os.FileMode(m)) }

func user(n bproc.NodeInfo) string {
	if n.User != "" {
		return n.User
	}
	return strconv.FormatUint(uint64(n.UID), 10)
}

func group(n bproc.NodeInfo) string {
	if n.Group != "" {
		return n.Group
	}
	return strconv.FormatUint(uint64(n.GID), 10)
}

func addr(n bproc.NodeInfo) string {
	if n.Addr == "" {
		return "-"
	}
	return n.Addr
}

// table writes rows padded to column widths, one space apart, with no
// trailing blanks.
func table(w io.Writer, rows [][]string) error {
	var width []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], len(c))
		}
	}
	bw := bufio.NewWriter(w)
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-len(c)))
			}
		}
		bw.WriteString(strings.TrimRight(b.String(), " "))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// writeCompact prints the default listing: nodes with the same status,
// mode, user and group on one line, folded.
func writeCompact(w io.Writer, rows []bproc.NodeInfo) error {
	type key struct {
		state, user, group string
		mode               uint32
	}
	type grp struct {
		key   key
		nodes []int
	}
	var groups []*grp
	index := map[key]*grp{}
	for _, n := range rows {
		k := key{n.State, user(n), group(n), n.Mode & 0o111}
		g := index[k]
		if g == nil {
			g = &grp{key: k}
			index[k] = g
			groups = append(groups, g)
		}
		g.nodes = append(g.nodes, n.Node)
	}
	slices.SortStableFunc(groups, func(a, b *grp) int {
		return cmp.Or(cmp.Compare(stateRank(a.key.state), stateRank(b.key.state)),
			strings.Compare(a.key.state, b.key.state),
			cmp.Compare(slices.Min(a.nodes), slices.Min(b.nodes)))
	})
	out := [][]string{{"Node(s)", "Status", "Mode", "User", "Group"}}
	for _, g := range groups {
		out = append(out, []string{nodespec.Fold(g.nodes), g.key.state, modeString(g.key.mode), g.key.user, g.key.group})
	}
	return table(w, out)
}

// byNode returns rows sorted by node number.
func byNode(rows []bproc.NodeInfo) []bproc.NodeInfo {
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, func(a, b bproc.NodeInfo) int { return cmp.Compare(a.Node, b.Node) })
	return rows
}

// writeLong prints -l: one line per node with its address.
func writeLong(w io.Writer, rows []bproc.NodeInfo) error {
	out := [][]string{{"Node", "Address", "Status", "Mode", "User", "Group"}}
	for _, n := range byNode(rows) {
		out = append(out, []string{strconv.Itoa(n.Node), addr(n), n.State, modeString(n.Mode), user(n), group(n)})
	}
	return table(w, out)
}

// writeFields prints the field flags' columns, tab-separated.
func writeFields(w io.Writer, rows []bproc.NodeInfo, f fields) error {
	bw := bufio.NewWriter(w)
	for _, n := range byNode(rows) {
		var cols []string
		for _, c := range []struct {
			on  bool
			val string
		}{
			{f.n, strconv.Itoa(n.Node)}, {f.a, addr(n)}, {f.s, n.State},
			{f.m, modeString(n.Mode)}, {f.u, user(n)}, {f.g, group(n)},
		} {
			if c.on {
				cols = append(cols, c.val)
			}
		}
		bw.WriteString(strings.Join(cols, "\t"))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// jsonStatus is the --json document; see the package doc.
type jsonStatus struct {
	MasterAddr string     `json:"master_addr"`
	Nodes      []jsonNode `json:"nodes"`
}

type jsonNode struct {
	Node      int        `json:"node"`
	State     string     `json:"state"`
	Addr      string     `json:"addr"`
	MACs      []string   `json:"macs"`
	Mode      string     `json:"mode"`
	ModeOctal string     `json:"mode_octal"`
	UID       uint32     `json:"uid"`
	GID       uint32     `json:"gid"`
	User      string     `json:"user"`
	Group     string     `json:"group"`
	Since     *time.Time `json:"since"`
}

// writeJSON prints the --json document, indented or on one line.
func writeJSON(w io.Writer, masterAddr string, rows []bproc.NodeInfo, indent bool) error {
	doc := jsonStatus{MasterAddr: masterAddr, Nodes: []jsonNode{}}
	for _, n := range byNode(rows) {
		j := jsonNode{
			Node: n.Node, State: n.State, Addr: n.Addr, MACs: n.MACs,
			Mode: modeString(n.Mode), ModeOctal: fmt.Sprintf("%04o", n.Mode),
			UID: n.UID, GID: n.GID, User: user(n), Group: group(n),
		}
		if j.MACs == nil {
			j.MACs = []string{}
		}
		if !n.Since.IsZero() {
			t := n.Since
			j.Since = &t
		}
		doc.Nodes = append(doc.Nodes, j)
	}
	enc := json.NewEncoder(w)
	if indent {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(doc)
}

// sortProcs orders processes by ghost, node and remote pid.
func sortProcs(ps []bproc.Proc) []bproc.Proc {
	ps = slices.Clone(ps)
	slices.SortStableFunc(ps, func(a, b bproc.Proc) int {
		return cmp.Or(cmp.Compare(a.Ghost, b.Ghost), cmp.Compare(a.Node, b.Node), cmp.Compare(a.PID, b.PID))
	})
	return ps
}

// writeProcs prints -p.
func writeProcs(w io.Writer, ps []bproc.Proc) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("Ghost\tNode\tPID\tCommand\n")
	for _, p := range sortProcs(ps) {
		fmt.Fprintf(bw, "%d\t%d\t%d\t%s\n", p.Ghost, p.Node, p.PID, strings.Join(p.Argv, " "))
	}
	return bw.Flush()
}

// nodeWidth is -P's minimum node column width.
const nodeWidth = 6

// annotate copies ps output from in to w with a node column; see the
// package doc.
func annotate(w io.Writer, in io.Reader, ps []bproc.Proc) error {
	ghosts := map[int][]bproc.Proc{} // the processes each local pid stands for
	nodes := map[int][]int{}         // the nodes shown on each local pid's line
	for _, p := range sortProcs(ps) {
		ghosts[p.Ghost] = append(ghosts[p.Ghost], p)
		nodes[p.Ghost] = append(nodes[p.Ghost], p.Node)
		if p.Client != 0 && p.Client != p.Ghost { // the client's line: every node it runs on
			nodes[p.Client] = append(nodes[p.Client], p.Node)
		}
	}
	folded := map[int]string{}
	width := nodeWidth
	for pid, ns := range nodes {
		folded[pid] = nodespec.Fold(ns)
		width = max(width, len(folded[pid]))
	}
	col := func(s string) string { return fmt.Sprintf("%-*s ", width, s) }

	br := bufio.NewReader(in)
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	pidField, cmdAt := -1, -1
	for first := true; ; first = false {
		line, err := br.ReadString('\n')
		if line != "" {
			body, nl := strings.CutSuffix(line, "\n")
			end := ""
			if nl {
				end = "\n"
			}
			if first {
				if i, c, ok := header(body); ok {
					pidField, cmdAt = i, c
					bw.WriteString(col("NODE") + body + end)
					continue
				}
			}
			pid, span, ok := findPID(body, pidField)
			list := ghosts[pid]
			if !ok || folded[pid] == "" {
				bw.WriteString(col("") + body + end)
				continue
			}
			bw.WriteString(col(folded[pid]) + body + end)
			for _, p := range list {
				bw.WriteString(col(strconv.Itoa(p.Node)) + child(body, span, cmdAt, p) + "\n")
			}
		}
		if err == io.EOF {
			return bw.Flush()
		}
		if err != nil {
			return fmt.Errorf("reading ps output: %w", err)
		}
	}
}

// header recognises a ps header line: the index of its PID field and the
// offset of its command column (-1 if it has none).
func header(line string) (pidField, cmdAt int, ok bool) {
	spans := fieldSpans(line)
	pidField = -1
	for i, s := range spans {
		if line[s[0]:s[1]] == "PID" {
			pidField = i
			break
		}
	}
	if pidField < 0 {
		return -1, -1, false
	}
	cmdAt = -1
	last := spans[len(spans)-1]
	switch line[last[0]:last[1]] {
	case "COMMAND", "CMD", "ARGS", "COMM":
		cmdAt = last[0]
	}
	return pidField, cmdAt, true
}

// findPID returns the pid of a ps line, from field pidField, or without a
// header from the first numeric field, and that field's span.
func findPID(line string, pidField int) (int, [2]int, bool) {
	spans := fieldSpans(line)
	if pidField >= 0 {
		if pidField >= len(spans) {
			return 0, [2]int{}, false
		}
		s := spans[pidField]
		n, err := strconv.Atoi(line[s[0]:s[1]])
		return n, s, err == nil
	}
	for _, s := range spans {
		if n, err := strconv.Atoi(line[s[0]:s[1]]); err == nil && n >= 0 {
			return n, s, true
		}
	}
	return 0, [2]int{}, false
}

// fieldSpans returns the [start, end) offsets of line's blank-separated
// fields.
func fieldSpans(line string) [][2]int {
	var spans [][2]int
	start := -1
	for i := 0; i <= len(line); i++ {
		blank := i == len(line) || line[i] == ' ' || line[i] == '\t'
		switch {
		case blank && start >= 0:
			spans = append(spans, [2]int{start, i})
			start = -1
		case !blank && start < 0:
			start = i
		}
	}
	return spans
}

// child is the line shown under a ghost's line for one remote process: its
// pid right-aligned where the ghost's pid is, and "[name]" under the
// command column, one level deeper in ps's forest drawing.
func child(ghost string, pidSpan [2]int, cmdAt int, p bproc.Proc) string {
	pid := strconv.Itoa(p.PID)
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", max(0, pidSpan[1]-len(pid))))
	b.WriteString(pid)
	name := "?"
	if len(p.Argv) > 0 && p.Argv[0] != "" {
		name = filepath.Base(p.Argv[0])
	}
	if cmdAt < 0 || cmdAt > len(ghost) || cmdAt <= pidSpan[1] {
		b.WriteString(" [" + name + "]")
		return b.String()
	}
	b.WriteString(strings.Repeat(" ", max(1, cmdAt-b.Len())))
	cmd := ghost[cmdAt:]
	art := cmd[:len(cmd)-len(strings.TrimLeft(cmd, ` |\_`))]
	b.WriteString(strings.ReplaceAll(art, `\_`, "  ") + ` \_ [` + name + "]")
	return b.String()
}
