package acct

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultMax    = 16 << 20 // bytes in the log before it is rotated
	DefaultKeep   = 3        // old logs kept: Path.1 … Path.3
	DefaultRecent = 200      // finished jobs kept in memory
)

// Config is where a Ledger writes.
type Config struct {
	Path   string // the accounting log; "" writes none (memory only)
	Max    int64  // rotate before the log would pass this size (DefaultMax)
	Keep   int    // old logs kept (DefaultKeep); negative: none
	Recent int    // finished jobs kept in memory (DefaultRecent)
	Log    *slog.Logger
}

// Totals are a node's finished jobs since the master started.
type Totals struct {
	Node   int           `json:"node"`
	Jobs   uint64        `json:"jobs"`
	Failed uint64        `json:"failed"` // exited non-zero, killed by a signal, or lost
	CPU    time.Duration `json:"cpu"`    // their CPU time (final usage)
}

// Ledger is the master's book of finished jobs: the log, the latest few,
// per-node totals. Safe for concurrent use.
type Ledger struct {
	cfg Config

	mu     sync.Mutex
	recent []Record // a ring of cfg.Recent; recent[head] is the oldest when full
	head   int
	totals map[int]*Totals

	wmu     sync.Mutex // the log file
	failing bool       // the last write failed (logged once until one succeeds)
}

// NewLedger returns an empty ledger writing to cfg.Path.
func NewLedger(cfg Config) *Ledger {
	if cfg.Max <= 0 {
		cfg.Max = DefaultMax
	}
	if cfg.Keep == 0 {
		cfg.Keep = DefaultKeep
	}
	if cfg.Recent <= 0 {
		cfg.Recent = DefaultRecent
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Ledger{cfg: cfg, totals: map[int]*Totals{}}
}

// Add books a finished job (Book) and logs it (Log).
func (l *Ledger) Add(r Record) {
	l.Book(r)
	l.Log(r)
}

// Book counts a finished job in the totals and the recent list: what
// the dashboard shows at once. Cheap: the master books a job before its
// client gets the exit status, so that a script's beostat -J after its
// bpsh finds it.
func (l *Ledger) Book(r Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.totals[r.Node]
	if t == nil {
		t = &Totals{Node: r.Node}
		l.totals[r.Node] = t
	}
	t.Jobs++
	if r.Status != 0 || r.Signal != 0 || r.Err != "" {
		t.Failed++
	}
	if r.Usage != nil {
		t.CPU += r.Usage.CPU
	}
	if len(l.recent) < l.cfg.Recent {
		l.recent = append(l.recent, r)
	} else {
		l.recent[l.head] = r
		l.head = (l.head + 1) % len(l.recent)
	}
}

// Log appends a finished job's line to the log (Config.Path; none if
// ""). A log that cannot be written is logged (once until it works
// again), never an error for the job.
func (l *Ledger) Log(r Record) {
	if l.cfg.Path == "" {
		return
	}
	line, err := json.Marshal(r)
	if err != nil { // a Record always encodes; be safe anyway
		l.cfg.Log.Warn("accounting: encode", "job", r.ID, "err", err)
		return
	}
	line = append(line, '\n')
	l.wmu.Lock()
	defer l.wmu.Unlock()
	err = l.write(line)
	switch {
	case err != nil && !l.failing:
		l.cfg.Log.Warn("accounting log not written (further failures not logged until it works again)",
			"path", l.cfg.Path, "err", err)
	case err == nil && l.failing:
		l.cfg.Log.Info("accounting log written again", "path", l.cfg.Path)
	}
	l.failing = err != nil
}

// write appends line to the log, rotating it first if the line would
// take it past Max; l.wmu is held.
func (l *Ledger) write(line []byte) error {
	f, err := os.OpenFile(l.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() > 0 && fi.Size()+int64(len(line)) > l.cfg.Max {
		f.Close()
		if err := l.rotate(); err != nil {
			return err
		}
		if f, err = os.OpenFile(l.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640); err != nil {
			return err
		}
	}
	_, err = f.Write(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// rotate shifts Path.N-1 → Path.N … Path → Path.1, dropping the oldest;
// with Keep negative it removes Path.
func (l *Ledger) rotate() error {
	p := l.cfg.Path
	if l.cfg.Keep < 0 {
		return os.Remove(p)
	}
	for i := l.cfg.Keep - 1; i >= 1; i-- {
		err := os.Rename(p+"."+strconv.Itoa(i), p+"."+strconv.Itoa(i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return os.Rename(p, p+".1")
}

// Recent returns the latest finished jobs, oldest first.
func (l *Ledger) Recent() []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Record, 0, len(l.recent))
	for i := range l.recent {
		out = append(out, l.recent[(l.head+i)%len(l.recent)])
	}
	return out
}

// Totals returns every node's totals, by node number.
func (l *Ledger) Totals() []Totals {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Totals, 0, len(l.totals))
	for _, t := range l.totals {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// ReadLog reads an accounting log: one Record per line. A line that is
// no Record (a torn last line after a crash) is an error naming it.
func ReadLog(r io.Reader) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return out, fmt.Errorf("accounting log line %d: %w", n, err)
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}
