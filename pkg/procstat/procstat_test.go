package procstat

import (
	"os"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Stat
		ok   bool
	}{
		{"42 (sleep) S 1 42 42 0 -1", Stat{'S', 1, 42}, true},
		{"7 (a) b (c)) T 3 9 9 0", Stat{'T', 3, 9}, true}, // comm with spaces and parentheses
		{"7 (x", Stat{}, false},
		{"7 (x) R", Stat{}, false},
		{"7 (x) R a b", Stat{}, false},
	} {
		got, err := Parse([]byte(tc.line))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Parse(%q): got %+v %v, want %+v ok=%v", tc.line, got, err, tc.want, tc.ok)
		}
	}
	self, err := Read(os.Getpid())
	if err != nil || self.PPID != os.Getppid() || self.State == 0 {
		t.Errorf("Read(self): %+v %v", self, err)
	}
}
