package nodes

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestStateNames(t *testing.T) {
	got := StateNames()
	want := []string{"down", "boot", "up", "error", "unavailable", "reboot", "halt", "pwroff", "alive"}
	if !slices.Equal(got, want) {
		t.Fatalf("StateNames() = %v, want %v", got, want)
	}
	for i, name := range want {
		s, err := ParseState(name)
		if err != nil || s != State(i) || s.String() != name {
			t.Errorf("ParseState(%q) = %v (%d), %v; want %d", name, s, s, err, i)
		}
	}
}

func TestParseState(t *testing.T) {
	tests := []struct {
		in   string
		want State
		err  string
	}{
		{"up", Up, ""},
		{"UP", Up, ""},
		{"Unavailable", Unavailable, ""},
		{"pwroff", Pwroff, ""},
		{"[up]", 0, `unknown node state "[up]" (want one of down, boot, up, error, unavailable, reboot, halt, pwroff, alive)`},
		{"", 0, `unknown node state ""`},
		{"upp", 0, `unknown node state "upp"`},
		{" up", 0, `unknown node state " up"`},
	}
	for _, tt := range tests {
		got, err := ParseState(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("ParseState(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)):
			t.Errorf("ParseState(%q) error %v, want %q", tt.in, err, tt.err)
		}
	}
}

func TestStateText(t *testing.T) {
	b, err := json.Marshal(map[string]State{"n": Unavailable})
	if got, want := string(b), `{"n":"unavailable"}`; err != nil || got != want {
		t.Errorf("json.Marshal = %s, %v; want %s", got, err, want)
	}
	var m map[string]State
	if err := json.Unmarshal([]byte(`{"n":"halt"}`), &m); err != nil || m["n"] != Halt {
		t.Errorf("json.Unmarshal = %v, %v; want halt", m, err)
	}
	if err := json.Unmarshal([]byte(`{"n":"nope"}`), &m); err == nil {
		t.Error("json.Unmarshal of a bad state succeeded")
	}
	if _, err := State(200).MarshalText(); err == nil {
		t.Error("State(200).MarshalText succeeded")
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{State(42).String(), "state(42)"},
		{User.String(), "user"},
		{Admin.String(), "admin"},
		{System.String(), "system"},
		{Actor(9).String(), "actor(9)"},
		{KindState.String(), "state"},
		{KindRemoved.String(), "removed"},
		{Kind(0).String(), "kind(0)"},
		{Node{State: Up}.Display(), "up"},
		{Node{State: Up, Secondary: true}.Display(), "[up]"},
		{Node{State: Boot, Secondary: true}.Display(), "boot"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}

// FuzzParseState checks ParseState never panics and that whatever it
// accepts prints back as the same name.
func FuzzParseState(f *testing.F) {
	for _, s := range append(StateNames(), "[up]", "UP", "", "x") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseState(in)
		if err != nil {
			return
		}
		if s >= numStates || !strings.EqualFold(s.String(), in) {
			t.Fatalf("ParseState(%q) = %d %q", in, s, s)
		}
	})
}
