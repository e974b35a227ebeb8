package config

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// addSeeds seeds f with every fixture and a few awkward texts.
func addSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.conf"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{"", editable, DefaultText, ExampleText, "\n\n#\n", "node 1 pxe+local pxe", "node\tlocal local 0:0:0:0:0:0\r\n",
		"hostrange 10.0.0.1 10.0.0.2\nhost 00:00:00:00:00:01\nhost 00:00:00:00:00:02 10.0.0.1\n"} {
		f.Add([]byte(s))
	}
}

func FuzzParse(f *testing.F) {
	addSeeds(f)
	opt := Options{Masters: []netip.Addr{netip.MustParseAddr("10.54.0.1")}}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.conf", data, opt)
		n := max(len(splitLines(data)), 1) // an empty file's error is on line 1
		nerr := 0
		for _, d := range c.Diags() {
			if d.Line < 1 || d.Line > n {
				t.Errorf("diagnostic on line %d of a %d-line file: %v", d.Line, n, d)
			}
			if d.Severity == Error {
				nerr++
			}
		}
		if (nerr > 0) != (err != nil) {
			t.Errorf("%d error diagnostics but error %v", nerr, err)
		}
		for _, s := range c.Nodes() {
			if m := s.MACs; len(m) > 0 {
				if got := c.Lookup(m[0]); got.Kind != KindNode || got.Node != s.Num {
					t.Errorf("Lookup(%s): got %+v, want node %d", m[0], got, s.Num)
				}
			}
			if a, ok := c.NodeAddr(s.Num); ok {
				if back, ok := c.NodeByAddr(a); !ok || back != s.Num {
					t.Errorf("NodeByAddr(NodeAddr(%d)) = %d %v", s.Num, back, ok)
				}
			}
		}
		for _, h := range c.Hosts() {
			if got := c.Lookup(h.MAC); got.Kind != KindHost {
				t.Errorf("Lookup(host %s): got %+v", h.MAC, got)
			}
		}
		c.NextNode()
	})
}

// addCorpus seeds f with the corpus of the fuzz target named target
// (testdata/fuzz/TARGET, one []byte value a file).
func addCorpus(f *testing.F, target string) {
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
	if len(files) == 0 {
		f.Fatalf("no corpus for %s", target)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		header, value, _ := strings.Cut(string(data), "\n")
		lit, ok := strings.CutPrefix(strings.TrimSpace(value), "[]byte(")
		lit, ok2 := strings.CutSuffix(lit, ")")
		s, err := strconv.Unquote(lit)
		if header != "go test fuzz v1" || !ok || !ok2 || err != nil {
			f.Fatalf("%s: not a go test fuzz v1 []byte value", file)
		}
		f.Add([]byte(s))
	}
}

// FuzzReload runs the reload decision on FuzzParse's corpus: the master
// (applets/master reload) applies a file only when it parses without
// error (config.Open, then boot.Server.SetFile checks Err again), and
// then knows node n for each n below NodeCount with a NodeAddr
// (masterConfig). No file it would apply may leave it with no node: that
// is how a file of random bytes dropped a whole cluster (issue 10).
func FuzzReload(f *testing.F) {
	addSeeds(f)
	addCorpus(f, "FuzzParse")
	opt := Options{Masters: []netip.Addr{netip.MustParseAddr("10.54.0.1")}}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := NewFile("fuzz.conf", data, opt)
		if err != nil {
			if file.Config().Err() == nil {
				t.Fatalf("NewFile failed (%v) on a Config without errors", err)
			}
			return // refused: the running config stays
		}
		c := file.Config()
		if err := c.Err(); err != nil {
			t.Fatalf("NewFile accepted a Config with errors: %v", err)
		}
		n := c.NodeCount()
		if n == 0 {
			t.Fatalf("accepted with no nodes; diagnostics:\n%s", diagList(c.Diags()))
		}
		for _, k := range []int{0, n - 1} {
			if _, ok := c.NodeAddr(k); !ok {
				t.Fatalf("accepted, but node %d of %d has no address: the master would not know it", k, n)
			}
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		file, _ := NewFile("fuzz.conf", data, Options{})
		if !bytes.Equal(file.Bytes(), data) {
			t.Fatalf("unchanged File bytes differ from the input")
		}
		old := file.Config()
		var nl *nodeLine
		for i := range old.nodeLines {
			if old.nodeLines[i].stageTok >= 0 {
				nl = &old.nodeLines[i]
				break
			}
		}
		if nl == nil {
			return
		}
		stage := StageLocal
		if nl.stage == StageLocal {
			stage = StagePXE
		}
		if err := file.SetBootStage(nl.num, stage); err != nil {
			t.Fatalf("SetBootStage(%d, %s): %v", nl.num, stage, err)
		}
		before, after := splitLines(data), splitLines(file.Bytes())
		if len(before) != len(after) {
			t.Fatalf("SetBootStage changed the line count from %d to %d", len(before), len(after))
		}
		for i := range before {
			if i+1 != nl.line && !bytes.Equal(before[i], after[i]) {
				t.Errorf("SetBootStage changed line %d: %q → %q", i+1, before[i], after[i])
			}
		}
		if bytes.HasSuffix(data, []byte("\n")) != bytes.HasSuffix(file.Bytes(), []byte("\n")) {
			t.Errorf("SetBootStage changed the final newline")
		}
		// Same config but for that stage and the diagnostics of its line.
		got := *file.Config()
		if s, _ := got.Node(nl.num); s.Stage != stage {
			t.Errorf("node %d: got stage %s after SetBootStage(%s)", nl.num, s.Stage, stage)
		}
		got.nodeLines = append([]nodeLine(nil), got.nodeLines...)
		got.nodeLines[got.byNum[nl.num]].stage = nl.stage
		want := *old
		got.diags, want.diags = dropLine(got.diags, nl.line), dropLine(want.diags, nl.line)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("config after SetBootStage differs beyond the stage:\ngot  %+v\nwant %+v", got, want)
		}
	})
}

func dropLine(ds []Diag, line int) []Diag {
	var out []Diag
	for _, d := range ds {
		if d.Line != line {
			out = append(out, d)
		}
	}
	return out
}
