package nodelog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPrintfStamp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log") // created on the first line
	tests := []struct {
		at   time.Time
		want string
	}{
		{time.Date(2025, 1, 2, 3, 4, 5, 678_900_000, time.UTC), "2025-01-02T03:04:05.678Z beoserv: x 1\n"},
		{time.Date(2025, 1, 2, 3, 4, 6, 0, time.UTC), "2025-01-02T03:04:06.000Z beoserv: x 2\n"},
		{time.Date(2025, 1, 2, 3, 4, 7, 5_000_000, time.FixedZone("", 3600)), "2025-01-02T03:04:07.005+01:00 beoserv: x 3\n"},
	}
	var want strings.Builder
	for i, tt := range tests {
		l := Log{Dir: dir, Who: "beoserv", Clock: func() time.Time { return tt.at }}
		if err := l.Printf(4, "x %d", i+1); err != nil {
			t.Fatal(err)
		}
		want.WriteString(tt.want)
	}
	b, err := os.ReadFile(filepath.Join(dir, "node.4"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != want.String() {
		t.Errorf("node.4 = %q, want %q", got, want.String())
	}
	// What is written reads back, to the millisecond.
	ls, err := Read(dir, 4)
	if err != nil || len(ls) != len(tests) {
		t.Fatalf("Read = %v, %v; want %d lines", ls, err, len(tests))
	}
	for i, tt := range tests {
		if l := ls[i]; !l.T.Equal(tt.at.Truncate(time.Millisecond)) || l.Who != "beoserv" || l.Text != "x "+string(rune('1'+i)) {
			t.Errorf("line %d = %+v, want %v beoserv x %d", i, l, tt.at, i+1)
		}
	}
}

func TestPrintfNoLog(t *testing.T) {
	if err := (Log{}).Printf(1, "nothing"); err != nil {
		t.Errorf("zero Log: %v", err)
	}
	l := Log{Dir: t.TempDir(), Who: "bpmaster"}
	if err := l.Printf(2, "two\nlines"); err != nil {
		t.Fatal(err)
	}
	if ls, err := Read(l.Dir, 2); err != nil || len(ls) != 1 || ls[0].Text != "two lines" {
		t.Errorf("a text with a newline reads back as %+v, %v; want one line", ls, err)
	}
	if _, err := Read(l.Dir, 3); !os.IsNotExist(err) {
		t.Errorf("Read of a missing log: %v, want not exist", err)
	}
}

func TestParse(t *testing.T) {
	in := strings.Join([]string{
		"2025-01-02T03:04:05.678Z beoserv: http GET /boot/kernel: 10 bytes",
		"node_up output, as the script wrote it",
		"",
		"2025-01-02T03:04:06+01:00 connected from 10.0.0.1:5 (macs [], build x)", // bpmaster before nodelog
		"2025-01-02T03:04:07.5Z bpmaster: down: a: b",
		"notatime beoserv: x",
	}, "\n")
	ls, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Line{
		{time.Date(2025, 1, 2, 3, 4, 5, 678_000_000, time.UTC), "beoserv", "http GET /boot/kernel: 10 bytes"},
		{time.Date(2025, 1, 2, 2, 4, 6, 0, time.UTC), "", "connected from 10.0.0.1:5 (macs [], build x)"},
		{time.Date(2025, 1, 2, 3, 4, 7, 500_000_000, time.UTC), "bpmaster", "down: a: b"},
	}
	if len(ls) != len(want) {
		t.Fatalf("Parse = %+v, want %d lines", ls, len(want))
	}
	for i, w := range want {
		if !ls[i].T.Equal(w.T) || ls[i].Who != w.Who || ls[i].Text != w.Text {
			t.Errorf("line %d = %+v, want %+v", i, ls[i], w)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("2025-01-02T03:04:05.678Z beoserv: x\n")
	f.Add("2025-01-02T03:04:06+01:00 connected\nx")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		ls, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, l := range ls {
			if strings.Contains(l.Who, " ") || strings.Contains(l.Text, "\n") {
				t.Fatalf("line %+v", l)
			}
		}
	})
}
