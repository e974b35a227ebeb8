package boot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNodeLogStamp(t *testing.T) {
	dir := t.TempDir()
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
		l := &nodeLogs{dir: dir, clock: func() time.Time { return tt.at }}
		if err := l.printf(4, "x %d", i+1); err != nil {
			t.Fatal(err)
		}
		want.WriteString(tt.want)
		// Readers (pkg/lab's timeline) parse the stamp as RFC 3339.
		got, err := time.Parse(time.RFC3339Nano, strings.Fields(tt.want)[0])
		if err != nil || !got.Equal(tt.at.Truncate(time.Millisecond)) {
			t.Errorf("stamp %q parses to %v, %v; want %v", strings.Fields(tt.want)[0], got, err, tt.at)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "node.4"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != want.String() {
		t.Errorf("node.4 = %q, want %q", got, want.String())
	}
}
