package master

import "sync"

// jobs counts, per node and uid, the execs between the moment the master
// accepts one (after the permission check, before anything is sent to the
// node) and the moment its relay ends. The kickback name service asks it
// whether a node may learn a user's passwd and group entries: only while
// that user has a job starting or running there.
type jobs struct {
	mu sync.Mutex
	n  map[jobKey]int
}

type jobKey struct {
	node int
	uid  uint32
}

// start records a job of uid on node and returns the func that ends it.
func (j *jobs) start(node int, uid uint32) (end func()) {
	k := jobKey{node, uid}
	j.mu.Lock()
	if j.n == nil {
		j.n = map[jobKey]int{}
	}
	j.n[k]++
	j.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			j.mu.Lock()
			if j.n[k]--; j.n[k] <= 0 {
				delete(j.n, k)
			}
			j.mu.Unlock()
		})
	}
}

func (j *jobs) has(node int, uid uint32) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.n[jobKey{node, uid}] > 0
}

// UsesUID reports whether node has a job of uid starting or running.
func (m *Master) UsesUID(node int, uid uint32) bool { return m.jobs.has(node, uid) }
