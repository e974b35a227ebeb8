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

// unknownList is the unknown-addresses file: one MAC per line, each MAC
// once, in the order first seen. It is read once and rewritten atomically
// when a MAC is added; lines it does not understand are kept.
type unknownList struct {
	path string
	mu   sync.Mutex
	seen map[config.MAC]bool // nil until read
}

// Add records m; it reports whether m was new.
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
