package acct

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

func TestCPUPct(t *testing.T) {
	u := func(at, cpu time.Duration) *wire.Usage { return &wire.Usage{At: at, CPU: cpu} }
	for _, tc := range []struct {
		name      string
		prev, cur *wire.Usage
		want      float64
	}{
		{"no reading", nil, nil, -1},
		{"first reading: since the start", nil, u(2*time.Second, time.Second), 50},
		{"two CPUs busy", u(time.Second, time.Second), u(3*time.Second, 5*time.Second), 200},
		{"idle", u(time.Second, time.Second), u(6*time.Second, time.Second), 0},
		{"same age: since the start", u(time.Second, time.Second), u(time.Second, time.Second), 100},
		{"a counter going back reads 0", u(time.Second, 2*time.Second), u(2*time.Second, time.Second), 0},
		{"age 0", nil, u(0, 0), -1},
		{"a few milliseconds old: too short to tell", nil, u(3*time.Millisecond, 4*time.Millisecond), -1},
		{"readings too close together", u(time.Second, time.Second), u(time.Second+time.Millisecond, time.Second), -1},
	} {
		if got := CPUPct(tc.prev, tc.cur); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		status, signal int
		err            string
		want           int
	}{{0, 0, "", 0}, {3, 0, "", 3}, {0, 9, "", 137}, {0, 0, "connection lost", 255}, {0, 9, "lost", 255}} {
		if got := ExitStatus(tc.status, tc.signal, tc.err); got != tc.want {
			t.Errorf("ExitStatus(%d, %d, %q): got %d, want %d", tc.status, tc.signal, tc.err, got, tc.want)
		}
	}
}

func TestComm(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{nil, ""},
		{[]string{"/usr/bin/awk", "BEGIN{}"}, "awk"},
		{[]string{"sleep"}, "sleep"},
		{[]string{"dir/"}, ""},
		{[]string{strings.Repeat("x", 40)}, strings.Repeat("x", 32)},
		{[]string{strings.Repeat("x", 31) + "é"}, strings.Repeat("x", 31) + "?"}, // cut inside a rune
		{[]string{"bad\xffname"}, "bad?name"},
	} {
		if got := Comm(tc.argv); got != tc.want {
			t.Errorf("Comm(%q) = %q, want %q", tc.argv, got, tc.want)
		}
	}
}

func record(id uint64, node, status int, cpu time.Duration) Record {
	return Record{
		Job: Job{ID: id, Node: node, PID: 1000 + int(id), Ghost: 2000 + int(id), Client: 3000, UID: 1000,
			Argv: []string{"prog", "arg with space\ttab"}, Started: time.Unix(1700000000, 0).UTC(), CPUPct: 50,
			Usage: &wire.Usage{At: 2 * cpu, CPU: cpu, User: cpu, Mem: 0, MemPeak: 64 << 20, OOMKills: -1,
				TasksPeak: 1, ReadBytes: -1, WriteBytes: -1, Tree: true}},
		Ended: time.Unix(1700000002, 0).UTC(), Status: status,
	}
}

// TestLedger: totals and the recent ring in memory; one line per job in
// the log, read back whole.
func TestLedger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounting")
	l := NewLedger(Config{Path: path, Recent: 3})
	var want []Record
	for i := 1; i <= 5; i++ {
		r := record(uint64(i), i%2, i%3, time.Duration(i)*time.Second)
		want = append(want, r)
		l.Add(r)
	}
	lost := record(6, 1, 0, 0)
	lost.Usage, lost.Err = nil, "connection lost"
	l.Add(lost)
	want = append(want, lost)
	if got := l.Recent(); !reflect.DeepEqual(got, want[3:]) {
		t.Errorf("recent:\n got %+v\nwant %+v", got, want[3:])
	}
	// Node 0: jobs 2, 4 (statuses 2, 1); node 1: jobs 1, 3, 5, 6
	// (statuses 1, 0, 2, lost).
	wantTotals := []Totals{{Node: 0, Jobs: 2, Failed: 2, CPU: 6 * time.Second}, {Node: 1, Jobs: 4, Failed: 3, CPU: 9 * time.Second}}
	if got := l.Totals(); !reflect.DeepEqual(got, wantTotals) {
		t.Errorf("totals: got %+v, want %+v", got, wantTotals)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o640 {
		t.Errorf("log mode %v, want 0640", fi.Mode().Perm())
	}
	got, err := ReadLog(f)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("log: %v\n got %+v\nwant %+v", err, got, want)
	}
}

// TestLedgerRotates: the log never grows past Max; Keep old ones stay.
func TestLedgerRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "accounting")
	line, _ := jsonLine(record(1, 0, 0, time.Second))
	l := NewLedger(Config{Path: path, Max: int64(3*len(line) + 10), Keep: 2})
	for i := 1; i <= 20; i++ {
		l.Add(record(1, 0, 0, time.Second)) // same length every time
	}
	// 20 lines, 3 per file: the current holds 2, .1 and .2 three each;
	// the older ones are gone.
	for name, lines := range map[string]int{"accounting": 2, "accounting.1": 3, "accounting.2": 3} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || bytes.Count(b, []byte{'\n'}) != lines {
			t.Errorf("%s: %v, %d lines; want %d", name, err, bytes.Count(b, []byte{'\n'}), lines)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "accounting.3")); err == nil {
		t.Error("accounting.3 kept with Keep 2")
	}
	// Keep -1: the log alone, started again when full.
	path2 := filepath.Join(dir, "solo")
	l = NewLedger(Config{Path: path2, Max: int64(2 * len(line)), Keep: -1})
	for i := 0; i < 5; i++ {
		l.Add(record(1, 0, 0, time.Second))
	}
	if b, _ := os.ReadFile(path2); bytes.Count(b, []byte{'\n'}) != 1 {
		t.Errorf("Keep -1: %d lines, want 1", bytes.Count(b, []byte{'\n'}))
	}
	// One line larger than Max still lands, alone.
	path3 := filepath.Join(dir, "tiny")
	l = NewLedger(Config{Path: path3, Max: 10})
	l.Add(record(1, 0, 0, time.Second))
	l.Add(record(2, 0, 0, time.Second))
	if b, _ := os.ReadFile(path3); bytes.Count(b, []byte{'\n'}) != 1 {
		t.Errorf("Max below a line: %d lines, want 1", bytes.Count(b, []byte{'\n'}))
	}
}

func jsonLine(r Record) ([]byte, error) {
	b, err := json.Marshal(r)
	return append(b, '\n'), err
}

// TestLedgerUnwritable: a log that cannot be written is logged once,
// the job booked anyway.
func TestLedgerUnwritable(t *testing.T) {
	var logs bytes.Buffer
	l := NewLedger(Config{Path: filepath.Join(t.TempDir(), "no", "such", "dir", "accounting"),
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	for i := 0; i < 3; i++ {
		l.Add(record(uint64(i), 0, 0, time.Second))
	}
	if n := strings.Count(logs.String(), "accounting log not written"); n != 1 {
		t.Errorf("%d warnings, want 1: %s", n, logs.String())
	}
	if got := l.Totals(); len(got) != 1 || got[0].Jobs != 3 {
		t.Errorf("totals %+v: want 3 jobs booked", got)
	}
}

func TestReadLogTorn(t *testing.T) {
	b, _ := json.Marshal(record(1, 0, 0, time.Second))
	in := string(b) + "\n\n" + `{"id":2,"node":`
	got, err := ReadLog(strings.NewReader(in))
	if len(got) != 1 || err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("got %d records, %v; want 1 and an error naming line 3", len(got), err)
	}
}
