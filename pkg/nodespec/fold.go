package nodespec

import (
	"slices"
	"strconv"
	"strings"
)

// Fold writes nodes as a compact spec for display: sorted, duplicates
// removed, runs of two or more folded into ranges, "-1,0-4,7". Parse reads
// the result back to the same set. Numbers below -1 are not nodes; Fold
// prints them one by one, and Parse rejects them.
func Fold(nodes []int) string {
	ns := slices.Clone(nodes)
	slices.Sort(ns)
	ns = slices.Compact(ns)
	var b strings.Builder
	for i := 0; i < len(ns); i++ {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(ns[i]))
		j := i
		for ns[i] >= 0 && j+1 < len(ns) && ns[j+1] == ns[j]+1 {
			j++
		}
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(ns[j]))
			i = j
		}
	}
	return b.String()
}
