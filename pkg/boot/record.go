package boot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/beo-cluster/beo/pkg/atomicfile"
	"github.com/beo-cluster/beo/pkg/config"
)

// This file keeps the server's records: each node's dialog log and the
// list of MACs it may not assign.

// logStamp is the node log's time stamp: RFC 3339 with milliseconds
// (2006-01-02T15:04:05.000Z07:00), since DHCP, the iPXE script and the
// kernel fetch happen within one second and the boot timeline
// (pkg/lab) tells them apart. Readers parse it as time.RFC3339Nano.
const logStamp = "2006-01-02T15:04:05.000Z07:00"

// nodeLogs appends lines to dir/node.N; a zero nodeLogs writes nothing.
type nodeLogs struct {
	dir   string
	clock func() time.Time
	mu    sync.Mutex // one line at a time, whole lines
}

// printf appends one timestamped line to node n's log.
func (l *nodeLogs) printf(n int, format string, args ...any) error {
	if l.dir == "" {
		return nil
	}
	line := l.clock().Format(logStamp) + " beoserv: " + fmt.Sprintf(format, args...) + "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.path(n), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(l.dir, 0o755); err == nil {
			f, err = os.OpenFile(l.path(n), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		}
	}
	if err != nil {
		return fmt.Errorf("node %d: log: %w", n, err)
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("node %d: log: %w", n, err)
	}
	return nil
}

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
