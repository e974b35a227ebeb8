package slave

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/beo-cluster/beo/pkg/wire"
)

// TestMain lets the test binary be the exec trampoline, as the beo binary
// is: the slave under test starts /proc/self/exe as SpawnArg0.
func TestMain(m *testing.M) {
	if len(os.Args) > 0 && os.Args[0] == SpawnArg0 {
		Spawn()
		os.Exit(SpawnFailed)
	}
	if mode, ok := strings.CutPrefix(os.Getenv(signalsEnv), "wrap "); ok {
		wrapSignals(mode) // execs this binary again
	}
	os.Exit(m.Run())
}

// hardStack is this process's hard stack limit as `ulimit -Hs` prints it.
func hardStack(t *testing.T) string {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_STACK, &l); err != nil {
		t.Fatal(err)
	}
	if l.Max == ^uint64(0) {
		return "unlimited"
	}
	return strconv.FormatUint(l.Max/1024, 10)
}

func TestReadSpec(t *testing.T) {
	good, _ := json.Marshal(spawnSpec{Path: "/bin/true", Argv: []string{"true"}, UID: 7})
	for _, tc := range []struct {
		name    string
		in      []byte
		wantErr bool
	}{
		{"good", good, false},
		{"empty", nil, true},
		{"not json", []byte("{"), true},
		{"no program", []byte(`{"argv":["x"]}`), true},
		{"no argv", []byte(`{"path":"/bin/true"}`), true},
		{"too large", append(append([]byte(`{"path":"/x","argv":["x"],"env":["`), bytes.Repeat([]byte("a"), maxSpec)...), `"]}`...), true},
	} {
		s, err := readSpec(bytes.NewReader(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: got err %v, want error %v", tc.name, err, tc.wantErr)
		}
		if !tc.wantErr && (s.Path != "/bin/true" || s.UID != 7) {
			t.Errorf("%s: got %+v", tc.name, s)
		}
	}
}

func TestSpawnFailureErr(t *testing.T) {
	for _, tc := range []struct {
		f    spawnFailure
		want string
	}{
		{spawnFailure{Step: "exec", Errno: int(syscall.ENOENT), Msg: "no such file or directory"}, "no such file or directory"},
		{spawnFailure{Step: "setuid", Errno: int(syscall.EPERM), Msg: "setuid 5"}, "setuid 5: operation not permitted"},
		{spawnFailure{Step: "spec", Msg: "spec names no program"}, "spec names no program"},
	} {
		if got := tc.f.err().Error(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.f, got, tc.want)
		}
	}
}

func FuzzReadSpec(f *testing.F) {
	good, _ := json.Marshal(spawnSpec{Path: "/bin/true", Argv: []string{"true"}, Env: []string{"A=1"}, Groups: []uint32{1}})
	f.Add(good)
	f.Add([]byte(`{"path":"/x","argv":[]}`))
	f.Add([]byte{0xff, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := readSpec(bytes.NewReader(b))
		if err == nil && (s.Path == "" || len(s.Argv) == 0) {
			t.Fatalf("accepted a spec without a program: %+v", s)
		}
	})
}

// BenchmarkStart measures what the trampoline adds to starting /bin/true
// as another user: "direct" is os.StartProcess with a Credential (no
// rlimits), "small" goes through the small trampoline (spawn_small.go)
// and "spawn" through the Go one, both with the caller's rlimits.
func BenchmarkStart(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to switch users")
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	files := []*os.File{devnull, devnull, devnull}
	cred := syscall.Credential{Uid: 65534, Gid: 65534}
	var rl []wire.Rlimit
	for _, r := range []int{syscall.RLIMIT_NOFILE, syscall.RLIMIT_STACK, syscall.RLIMIT_CORE} {
		var l syscall.Rlimit
		syscall.Getrlimit(r, &l)
		rl = append(rl, wire.Rlimit{Resource: r, Cur: l.Cur, Max: l.Max})
	}
	wait := func(b *testing.B, p *os.Process) {
		st, err := p.Wait()
		if err != nil || !st.Success() {
			b.Fatalf("got %v, %v", st, err)
		}
	}
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{Dir: "/", Env: []string{}, Files: files,
				Sys: &syscall.SysProcAttr{Setpgid: true, Credential: &cred}})
			if err != nil {
				b.Fatal(err)
			}
			wait(b, p)
		}
	})
	b.Run("small", func(b *testing.B) {
		var s smallSpawner
		for b.Loop() {
			p, err := s.spawn("/bin/true", []string{"true"}, []string{},
				wire.Cred{UID: 65534, GID: 65534}, rl, true, &os.ProcAttr{Dir: "/", Files: files})
			if err != nil {
				b.Fatal(err)
			}
			wait(b, p)
		}
	})
	b.Run("spawn", func(b *testing.B) {
		for b.Loop() {
			p, err := spawn(spawnExe(), "/bin/true", []string{"true"}, []string{},
				wire.Cred{UID: 65534, GID: 65534}, rl, &os.ProcAttr{Dir: "/", Files: files})
			if err != nil {
				b.Fatal(err)
			}
			wait(b, p)
		}
	})
}

// spawnExe is the trampoline BenchmarkStart uses: $BEO_BIN (the real beo
// binary, as `make test-root` passes it) or this test binary.
func spawnExe() string {
	if p := os.Getenv("BEO_BIN"); p != "" {
		return p
	}
	return "/proc/self/exe"
}
