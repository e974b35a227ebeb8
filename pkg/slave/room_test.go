package slave

import "testing"

// TestRoomForJobs: what the jobs group may take of a node — the memory
// available less an eighth of the node's (64 MiB to 1 GiB), and all but
// 512 of the processes.
func TestRoomForJobs(t *testing.T) {
	for _, tc := range []struct {
		name            string
		r               room
		wantMem, wantPs int64
	}{
		{"QEMU node, 256 MiB", room{total: 205 << 20, avail: 150 << 20, pids: 1939}, 86 << 20, 1427},
		{"4 GiB", room{total: 4 << 30, avail: 3 << 30, pids: 32768}, 3<<30 - 512<<20, 32256},
		{"256 GiB", room{total: 256 << 30, avail: 250 << 30, pids: 4194304}, 249 << 30, 4193792},
		{"tiny", room{total: 96 << 20, avail: 40 << 20, pids: 300}, 64 << 20, 64},
	} {
		mem, pids := tc.r.forJobs()
		if mem != tc.wantMem || pids != tc.wantPs {
			t.Errorf("%s: memory.max %d, pids.max %d; want %d, %d", tc.name, mem, pids, tc.wantMem, tc.wantPs)
		}
	}
	r, err := readRoom()
	if err != nil || r.total <= 0 || r.avail <= 0 || r.avail > r.total || r.pids <= 0 {
		t.Errorf("readRoom() = %+v, %v", r, err)
	}
}
