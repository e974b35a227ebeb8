package boot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/beo-cluster/beo/pkg/atomicfile"
	"github.com/beo-cluster/beo/pkg/config"
)

// This file keeps the server's list of MACs it may not assign. Each
// node's dialog log is pkg/nodelog's.

// maxRecorded is the most MACs the server records by itself in each of
// its two lists: the config's ignore lines (a full cluster) and the
// unknown-addresses file (nodeassign off). Anyone on the cluster network
// can send DHCP requests with made-up MACs; past this many, a new MAC is
// still not answered but no longer written down (a warning says so, held
// back by the master's ratelog), so a flood cannot grow the admin's config
// or rewrite it for every packet.
const maxRecorded = 1024

// errListFull reports a list that already holds maxRecorded MACs.
var errListFull = fmt.Errorf("already %d MACs recorded", maxRecorded)

// unknownList is the unknown-addresses file: one MAC per line, each MAC
// once, in the order first seen. It is read once and rewritten atomically
// when a MAC is added; lines it does not understand are kept.
type unknownList struct {
	path string
	mu   sync.Mutex
	seen map[config.MAC]bool // nil until read
}

// Add records m; it reports whether m was new, errListFull when there is
// no room for it.
func (u *unknownList) Add(m config.MAC) (bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	data, err := os.ReadFile(u.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("unknown addresses: %w", err)
	}
	if u.seen == nil || err == nil {
		// Re-read each time we may write, so an admin's edit is not lost.
		u.seen = map[config.MAC]bool{}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if mm, err := config.ParseMAC(string(bytes.TrimSpace(sc.Bytes()))); err == nil {
				u.seen[mm] = true
			}
		}
	}
	if u.seen[m] {
		return false, nil
	}
	if len(u.seen) >= maxRecorded {
		return false, errListFull
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	data = append(data, m.String()+"\n"...)
	if err := atomicfile.WriteFile(u.path, data, 0o644); err != nil {
		return false, fmt.Errorf("unknown addresses: %w", err)
	}
	u.seen[m] = true
	return true, nil
}
