package head

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
)

// FormatStatus is `beo master status`'s text for st at now:
//
//	bpmaster running: pid 812, build 3f9c1e2a7b4d5e60, up 2h3m0s
//	config: /etc/beowulf/config
//	nodes: 8 (3 up, 5 down)
func FormatStatus(st bproc.Status, now time.Time) string {
	var b strings.Builder
	b.WriteString("bpmaster running")
	if m := st.Master; m != nil {
		fmt.Fprintf(&b, ": pid %d", m.PID)
		if m.Build != "" {
			fmt.Fprintf(&b, ", build %s", m.Build)
		}
		fmt.Fprintf(&b, ", up %s\n", now.Sub(m.Started).Round(time.Second))
		if m.Config != "" {
			fmt.Fprintf(&b, "config: %s\n", m.Config)
		}
	} else {
		b.WriteString("\n")
	}
	count := map[string]int{}
	for _, n := range st.Nodes {
		count[n.State]++
	}
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(count)) {
		parts = append(parts, fmt.Sprintf("%d %s", count[s], s))
	}
	fmt.Fprintf(&b, "nodes: %d", len(st.Nodes))
	if len(parts) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	b.WriteString("\n")
	return b.String()
}
