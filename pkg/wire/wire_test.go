package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	mode := uint32(0o110)
	msgs := []Header{
		{Op: OpHello, Hello: &Hello{Version: Version, Build: "abc", Node: 3, MACs: []string{"52:54:00:00:00:01"}}},
		{Op: OpExec, Exec: &Exec{ID: 7, Node: 2, Path: "/bin/true", Argv: []string{"true"}, Env: []string{"A=1"},
			Cred: Cred{UID: 1000, GID: 1000, Groups: []uint32{4, 27}}, Files: []FileRef{{Path: "/bin/true", Hash: "ab", Size: 1, Mode: 0o755}}}},
		{Op: OpControl, Control: &Control{Nodes: []int{1, 2}, State: "up", Mode: &mode}},
		{Op: OpExec, Exec: &Exec{ID: 8, Path: "/bin/cat", Argv: []string{"cat"}, NoStdin: true}},
		{Op: OpStates},
	}
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := Write(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	buf.WriteString("raw tail")
	for i, want := range msgs {
		var got Header
		if err := Read(&buf, &got); err != nil {
			t.Fatalf("msg %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("msg %d: got %+v, want %+v", i, got, want)
		}
	}
	if rest, _ := io.ReadAll(&buf); string(rest) != "raw tail" {
		t.Errorf("Read consumed past its frame: left %q", rest)
	}
}

func TestBadFrames(t *testing.T) {
	huge := make([]byte, 4)
	binary.BigEndian.PutUint32(huge, MaxFrame+1)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"zero length", []byte{0, 0, 0, 0}},
		{"oversized", huge},
		{"truncated", []byte{0, 0, 0, 9, '{'}},
		{"not json", append([]byte{0, 0, 0, 3}, "abc"...)},
		{"short header", []byte{0, 0}},
	} {
		var h Header
		if err := Read(bytes.NewReader(tc.in), &h); err == nil {
			t.Errorf("%s: got nil error", tc.name)
		}
	}
	var h Header
	if err := Read(bytes.NewReader(huge), &h); !errors.Is(err, ErrFrameSize) {
		t.Errorf("oversized: got %v, want ErrFrameSize", err)
	}
}

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	Write(&buf, Header{Op: OpExec, Exec: &Exec{Argv: []string{"ls"}}})
	f.Add(buf.Bytes())
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			var h Header
			if err := Read(r, &h); err != nil {
				return
			}
			// Whatever decoded must encode again.
			if err := Write(io.Discard, h); err != nil {
				t.Fatalf("re-encode: %v", err)
			}
		}
	})
}

// TestUsageFrames: a job's Usage travels in an Update and in the last
// Result; a reader of Events tells the two apart, and frames without
// Usage (an older slave's) decode as before.
func TestUsageFrames(t *testing.T) {
	u := &Usage{At: 1500 * time.Millisecond, CPU: time.Second, User: 900 * time.Millisecond, System: 100 * time.Millisecond,
		Mem: 64 << 20, MemPeak: 100 << 20, MemRSS: true, OOMKills: -1, Tasks: 2, TasksPeak: 3,
		ReadBytes: -1, WriteBytes: -1, Tree: true}
	frames := []any{
		Event{Update: &Update{Usage: u}},
		Event{Update: &Update{Procs: []ProcChange{{PID: 9, Argv: []string{"sleep", "1"}}}}},
		Result{Status: 3, Usage: u},
	}
	var buf bytes.Buffer
	for _, f := range frames {
		if err := Write(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	// Frames of a slave that knows no Usage.
	for _, raw := range []string{`{"update":{"procs":[{"pid":9,"gone":true}]}}`, `{"status":1,"opened":1}`} {
		binary.Write(&buf, binary.BigEndian, uint32(len(raw)))
		buf.WriteString(raw)
	}
	var evs [5]Event
	for i := range evs {
		if err := Read(&buf, &evs[i]); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if e := evs[0]; e.Result != nil || e.Update == nil || !reflect.DeepEqual(e.Update.Usage, u) || e.Update.Procs != nil {
		t.Errorf("usage update: got %+v", e)
	}
	if e := evs[1]; e.Result != nil || e.Update == nil || e.Update.Usage != nil || len(e.Update.Procs) != 1 {
		t.Errorf("procs update: got %+v", e)
	}
	if e := evs[2]; e.Result == nil || e.Update != nil || e.Status != 3 || !reflect.DeepEqual(e.Usage, u) {
		t.Errorf("result: got %+v", e)
	}
	if e := evs[3]; e.Result != nil || e.Update == nil || e.Update.Usage != nil || !e.Update.Procs[0].Gone {
		t.Errorf("old update: got %+v", e)
	}
	if e := evs[4]; e.Result == nil || e.Status != 1 || e.Usage != nil {
		t.Errorf("old result: got %+v", e)
	}
	// A Result as a reader that knows no Usage decodes it: the field is
	// skipped.
	var old struct {
		Status int `json:"status"`
	}
	buf.Reset()
	Write(&buf, Result{Status: 4, Usage: u})
	if err := Read(&buf, &old); err != nil || old.Status != 4 {
		t.Errorf("old reader: %+v %v", old, err)
	}
}

// TestReadWithinBudget: frames being read share a budget; one it cannot
// take now is refused before its body is read, and a frame's memory is
// what arrived, not what it announced.
func TestReadWithinBudget(t *testing.T) {
	b := &Budget{Max: 100}
	stall := func(n uint32) (io.Reader, chan struct{}) {
		pr, pw := io.Pipe()
		done := make(chan struct{})
		go func() {
			var hdr [4]byte
			binary.BigEndian.PutUint32(hdr[:], n)
			pw.Write(hdr[:])
			<-done
			pw.CloseWithError(io.ErrUnexpectedEOF)
		}()
		return pr, done
	}
	r1, done1 := stall(80)
	errc := make(chan error, 1)
	go func() { var v any; errc <- ReadWithin(r1, &v, b) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		used := b.used
		b.mu.Unlock()
		if used == 80 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first frame never took its share")
		}
		time.Sleep(time.Millisecond)
	}
	r2, done2 := stall(40)
	var v any
	if err := ReadWithin(r2, &v, b); !errors.Is(err, ErrBusy) {
		t.Errorf("a frame over the budget: got %v, want ErrBusy", err)
	}
	close(done2)
	close(done1)
	if err := <-errc; err == nil {
		t.Error("a stalled frame cut short: no error")
	}
	var ok struct{ A int }
	var frame bytes.Buffer
	Write(&frame, struct{ A int }{7})
	if err := ReadWithin(&frame, &ok, b); err != nil || ok.A != 7 {
		t.Errorf("after the budget is free again: %v %+v", err, ok)
	}
}
