package slave

import (
	"os"
	"strconv"
	"sync"
)

// A node's own pid range.
//
// A moved process keeps its pid (CRIU restores it; move.go), so the pid
// must be free on the node it moves to. Nodes that boot alike hand out
// the same pids to their jobs (a job is pid ~140 on every freshly booted
// QEMU node), which made every move of a young job collide. BProc had
// one pid space for the whole cluster; beo gives each node its own slice
// of a large one instead: on a real node (Config.SpreadPIDs) bpslave,
// once it knows its node number, raises the kernel's pid_max to its
// ceiling (4 194 304) and moves the next pid to the start of the node's
// slice, so jobs of different nodes get different pids until a node has
// started pidSlice processes (or in clusters of more than 255 nodes,
// whose slices wrap around). A collision left is a failed move with a
// clear error, never a wrong process.

const (
	pidMax   = 4 << 20
	pidSlice = pidMax / 256
)

var spreadOnce sync.Once

// spreadPIDs moves this node's next pid to the start of its slice, once
// per bpslave.
func (s *slave) spreadPIDs(node int) {
	if !s.cfg.SpreadPIDs || node < 0 {
		return
	}
	spreadOnce.Do(func() {
		base := (node%255 + 1) * pidSlice
		if err := os.WriteFile("/proc/sys/kernel/pid_max", []byte(strconv.Itoa(pidMax)), 0); err != nil {
			s.log.Warn("pid range: pid_max", "err", err)
			return
		}
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(base-1)), 0); err != nil {
			s.log.Warn("pid range: ns_last_pid", "err", err)
			return
		}
		s.log.Info("pid range", "node", node, "from", base, "to", base+pidSlice-1)
	})
}
