package slave

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

func TestExec(t *testing.T) {
	m := newMaster(t, steady)
	root := startSlave(t, m)
	s := m.next(t)
	if err := os.Mkdir(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "in.txt"), []byte("from a file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	realRoot, _ := filepath.EvalSymlinks(root)
	isRoot := os.Geteuid() == 0
	tests := []struct {
		name       string
		prog       []string // closure; the first is the program
		ex         wire.Exec
		o          execOpts
		skip       bool
		wantOut    string
		wantErrOut string
		wantStatus int
		wantErr    string // substring of Result.Err before the start
	}{
		{name: "echo", prog: []string{"/bin/echo"}, ex: wire.Exec{Argv: []string{"echo", "hi"}}, wantOut: "hi\n"},
		{name: "exit status", prog: []string{"/bin/sh"}, ex: wire.Exec{Argv: []string{"sh", "-c", "exit 3"}}, wantStatus: 3},
		{name: "stdout and stderr apart", prog: []string{"/bin/sh"},
			ex:      wire.Exec{Argv: []string{"sh", "-c", "echo out; echo err >&2"}},
			wantOut: "out\n", wantErrOut: "err\n"},
		{name: "stdin", prog: []string{"/bin/cat"}, ex: wire.Exec{Argv: []string{"cat"}},
			o: execOpts{stdin: "line 1\nline 2\n"}, wantOut: "line 1\nline 2\n"},
		{name: "env exactly", prog: []string{"/usr/bin/env"}, ex: wire.Exec{Argv: []string{"env"}, Env: []string{"A=1", "B=2"}},
			wantOut: "A=1\nB=2\n"},
		{name: "no env at all", prog: []string{"/usr/bin/env"}, ex: wire.Exec{Argv: []string{"env"}}, wantOut: ""},
		{name: "dir under root", prog: []string{"/usr/bin/pwd"}, ex: wire.Exec{Argv: []string{"pwd"}, Dir: "/sub"},
			wantOut: realRoot + "/sub\n"},
		{name: "missing dir is root", prog: []string{"/usr/bin/pwd"}, ex: wire.Exec{Argv: []string{"pwd"}, Dir: "/nowhere"},
			wantOut: realRoot + "\n"},
		{name: "attach before exec", prog: []string{"/bin/echo"}, ex: wire.Exec{Argv: []string{"echo", "early"}},
			o: execOpts{attachFirst: true}, wantOut: "early\n"},
		{name: "no io", prog: []string{"/bin/sh"}, ex: wire.Exec{Argv: []string{"sh", "-c", "echo lost; exit 4"}, NoIO: true},
			wantStatus: 4},
		{name: "remote stdin and stdout", prog: []string{"/bin/sh"},
			ex: wire.Exec{Argv: []string{"sh", "-c", "cat; echo visible >&2"}, Stdin: "/in.txt", Stdout: "/out.txt"},
			o:  execOpts{stdin: "ignored"}, wantErrOut: "visible\n"},
		{name: "as nobody", prog: []string{"/usr/bin/id"}, ex: wire.Exec{Argv: []string{"id", "-u"},
			Cred: wire.Cred{UID: 65534, GID: 65534}}, skip: !isRoot, wantOut: "65534\n"},
		{name: "not root cannot switch", prog: []string{"/usr/bin/id"}, ex: wire.Exec{Argv: []string{"id"},
			Cred: wire.Cred{UID: uint32(os.Geteuid() + 1)}}, skip: isRoot,
			wantErr: fmt.Sprintf("node 3: cannot run as uid %d: bpslave is not root", os.Geteuid()+1)},
		{name: "as nobody with rlimits", prog: []string{"/bin/sh"}, ex: wire.Exec{
			Argv: []string{"sh", "-c", "id -u; ulimit -n; ulimit -Hn; ulimit -Hs"},
			Cred: wire.Cred{UID: 65534, GID: 65534},
			Rlim: []wire.Rlimit{{Resource: syscall.RLIMIT_NOFILE, Cur: 123, Max: 456},
				// above the slave's own hard limit: clamped to it
				{Resource: syscall.RLIMIT_STACK, Cur: 1 << 20, Max: ^uint64(0)}},
			Env: []string{"PATH=/usr/bin:/bin"}},
			skip: !isRoot, wantOut: "65534\n123\n456\n" + hardStack(t) + "\n"},
		{name: "as nobody missing program", ex: wire.Exec{Path: "/no/such/prog", Argv: []string{"prog"},
			Cred: wire.Cred{UID: 65534, GID: 65534}}, skip: !isRoot,
			wantErr: "node 3: /no/such/prog: no such file or directory"},
		{name: "as nobody not allowed", ex: wire.Exec{Path: "/secret/true", Argv: []string{"true"},
			Cred: wire.Cred{UID: 65534, GID: 65534}}, skip: !isRoot,
			wantErr: "node 3: /secret/true: permission denied"},
		{name: "as nobody in its dir", prog: []string{"/usr/bin/pwd"}, ex: wire.Exec{Argv: []string{"pwd"}, Dir: "/sub",
			Cred: wire.Cred{UID: 65534, GID: 65534}}, skip: !isRoot, wantOut: realRoot + "/sub\n"},
		{name: "as nobody in a dir it cannot see is root", prog: []string{"/usr/bin/pwd"}, ex: wire.Exec{Argv: []string{"pwd"},
			Dir: "/secret/inner", Cred: wire.Cred{UID: 65534, GID: 65534}}, skip: !isRoot, wantOut: realRoot + "\n"},
		{name: "as nobody in a dir it sees but may not enter", prog: []string{"/usr/bin/pwd"}, ex: wire.Exec{Argv: []string{"pwd"},
			Dir: "/sub/closed", Cred: wire.Cred{UID: 65534, GID: 65534}}, skip: !isRoot, wantErr: "permission denied"},
		{name: "as nobody in a dir it sees but may not enter, other limits (the trampoline)", prog: []string{"/usr/bin/pwd"}, ex: wire.Exec{Argv: []string{"pwd"},
			Dir: "/sub/closed", Cred: wire.Cred{UID: 65534, GID: 65534}, Rlim: []wire.Rlimit{{Resource: syscall.RLIMIT_NOFILE, Cur: 123, Max: 456}}},
			skip: !isRoot, wantErr: "chdir /sub/closed: permission denied"},
		{name: "as nobody in a file is root", prog: []string{"/usr/bin/pwd"}, ex: wire.Exec{Argv: []string{"pwd"},
			Dir: "/in.txt", Cred: wire.Cred{UID: 65534, GID: 65534}}, skip: !isRoot, wantOut: realRoot + "\n"},
		{name: "missing program", ex: wire.Exec{Path: "/no/such/prog", Argv: []string{"prog"}},
			wantErr: "node 3: /no/such/prog: no such file or directory"},
	}
	if isRoot { // let nobody reach the root dir
		for _, d := range []string{filepath.Dir(root), root} {
			os.Chmod(d, 0o755)
		}
	}
	// A program nobody may not reach.
	if err := os.Mkdir(filepath.Join(root, "secret"), 0o700); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile("/bin/true"); err != nil || os.WriteFile(filepath.Join(root, "secret/true"), b, 0o755) != nil {
		t.Fatalf("copy /bin/true: %v", err)
	}
	// Directories nobody cannot see, and may see but not enter.
	for d, mode := range map[string]os.FileMode{"secret/inner": 0o755, "sub/closed": 0o700} {
		if err := os.Mkdir(filepath.Join(root, d), mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip {
				t.Skip("needs another identity")
			}
			c := closure{}
			if len(tt.prog) > 0 {
				c = program(t, tt.prog...)
			}
			r := s.start(t, tt.ex, c, tt.o)
			if tt.wantErr != "" || r.err != "" {
				if !strings.Contains(r.err, tt.wantErr) || tt.wantErr == "" {
					t.Fatalf("start: got err %q, want it to contain %q", r.err, tt.wantErr)
				}
				return
			}
			res := r.wait(t)
			if res != (wire.Result{Status: tt.wantStatus}) {
				t.Errorf("result: got %+v, want status %d", res, tt.wantStatus)
			}
			if got := r.stdout.String(); got != tt.wantOut {
				t.Errorf("stdout: got %q, want %q", got, tt.wantOut)
			}
			if got := r.stderr.String(); got != tt.wantErrOut {
				t.Errorf("stderr: got %q, want %q", got, tt.wantErrOut)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(root, "out.txt")); string(b) != "from a file\n" {
		t.Errorf("remote stdout file: got %q, %v; want %q", b, err, "from a file\n")
	}
}

func TestExecCache(t *testing.T) {
	m := newMaster(t, steady)
	startSlave(t, m)
	s := m.next(t)
	c := program(t, "/bin/echo")
	want := []string{c.refs[0].Hash}
	for i, wantNeed := range [][]string{want, {}} {
		r := s.start(t, wire.Exec{Argv: []string{"echo", "run", fmt.Sprint(i)}}, c, execOpts{})
		if fmt.Sprint(r.need) != fmt.Sprint(wantNeed) {
			t.Errorf("run %d: got Need %v, want %v", i, r.need, wantNeed)
		}
		if res := r.wait(t); res != (wire.Result{}) || r.stdout.String() != fmt.Sprintf("run %d\n", i) {
			t.Errorf("run %d: got %+v %q", i, res, r.stdout.String())
		}
	}
}

func TestExecBadFile(t *testing.T) {
	m := newMaster(t, steady)
	startSlave(t, m)
	s := m.next(t)
	c := program(t, "/bin/echo")
	ex := wire.Exec{ID: nextID.Add(1), Path: "/bin/echo", Argv: []string{"echo"}, Files: c.refs}
	st := s.open(t, wire.Header{Op: wire.OpExec, Exec: &ex})
	var need wire.Need
	if err := wire.Read(st, &need); err != nil || len(need.Hashes) != 1 {
		t.Fatalf("Need: got %+v, %v", need, err)
	}
	// Right size, wrong bytes.
	wire.Write(st, wire.FileHeader{Hash: need.Hashes[0], Size: c.refs[0].Size})
	st.Write(make([]byte, c.refs[0].Size))
	var res wire.Result
	if err := wire.Read(st, &res); err != nil || !strings.Contains(failed(res), "node 3: /bin/echo: file transfer failed") {
		t.Fatalf("got %+v, %v; want a transfer error", res, err)
	}
	// Nothing was cached: the next run asks again.
	r := s.start(t, wire.Exec{Argv: []string{"echo", "ok"}}, c, execOpts{})
	if len(r.need) != 1 {
		t.Errorf("after a bad transfer: got Need %v, want the file again", r.need)
	}
	if res := r.wait(t); res != (wire.Result{}) || r.stdout.String() != "ok\n" {
		t.Errorf("got %+v %q", res, r.stdout.String())
	}
}

func TestExecSignals(t *testing.T) {
	m := newMaster(t, steady)
	startSlave(t, m)
	s := m.next(t)
	c := program(t, "/bin/sleep")

	r := s.start(t, wire.Exec{Argv: []string{"sleep", "30"}}, c, execOpts{})
	if r.err != "" || r.pid <= 0 {
		t.Fatalf("start: got pid %d err %q", r.pid, r.err)
	}
	r.signal(t, syscall.SIGTERM)
	if got, want := r.wait(t), (wire.Result{Signal: int(syscall.SIGTERM)}); got != want {
		t.Errorf("SIGTERM: got %+v, want %+v", got, want)
	}

	// The master closing the exec stream hangs the process up.
	r = s.start(t, wire.Exec{Argv: []string{"sleep", "30"}}, c, execOpts{})
	r.st.Close()
	deadline := time.Now().Add(wait)
	for alive(r.pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still running %s after a hangup", r.pid, wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

func TestExecConcurrent(t *testing.T) {
	m := newMaster(t, steady)
	startSlave(t, m)
	s := m.next(t)
	c := program(t, "/bin/echo")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.start(t, wire.Exec{Argv: []string{"echo", fmt.Sprint(i)}}, c, execOpts{attachFirst: i%2 == 0})
			if r.err != "" {
				t.Errorf("exec %d: %s", i, r.err)
				return
			}
			if res := r.wait(t); res != (wire.Result{}) || r.stdout.String() != fmt.Sprintf("%d\n", i) {
				t.Errorf("exec %d: got %+v %q", i, res, r.stdout.String())
			}
		}()
	}
	wg.Wait()
}

// TestExecBackPressure checks that a master not reading stdout stops the
// process (blocked writing its pipe) instead of the slave buffering it,
// and that everything arrives once it reads.
func TestExecBackPressure(t *testing.T) {
	m := newMaster(t, steady)
	startSlave(t, m)
	s := m.next(t)
	const size = 8 << 20
	r := s.start(t, wire.Exec{Argv: []string{"head", "-c", fmt.Sprint(size), "/dev/zero"}},
		program(t, "/usr/bin/head"), execOpts{noRead: true})
	deadline := time.Now().Add(wait)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", r.pid))
		if strings.Contains(string(b), "pipe_write") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never blocked writing its stdout (wchan %q)", r.pid, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.copyOut(1)
	if res := r.wait(t); res != (wire.Result{}) || r.stdout.Len() != size {
		t.Errorf("got %+v and %d bytes, want status 0 and %d bytes", res, r.stdout.Len(), size)
	}
}

// TestHangupKillsStubbornGroup: a group that ignores SIGHUP is killed,
// all of it, after the grace period.
func TestHangupKillsStubbornGroup(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "trap '' HUP; sleep 30 & echo $!; wait"},
		&os.ProcAttr{Files: []*os.File{nil, pw, os.Stderr}, Sys: &syscall.SysProcAttr{Setpgid: true}})
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	var child int
	pr.SetReadDeadline(time.Now().Add(wait))
	if _, err := fmt.Fscan(pr, &child); err != nil {
		t.Fatal(err)
	}
	r := &running{pid: p.Pid, proc: p, grace: 50 * time.Millisecond}
	r.hangup()
	done := make(chan *os.ProcessState, 1)
	go func() { st, _ := p.Wait(); done <- st }()
	select {
	case st := <-done:
		if ws := st.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGKILL {
			t.Errorf("leader: got %v, want killed by SIGKILL", st)
		}
	case <-time.After(wait):
		p.Kill()
		t.Fatal("leader survived the hangup")
	}
	deadline := time.Now().Add(wait)
	for alive(child) {
		if time.Now().After(deadline) {
			t.Fatalf("group member %d survived the hangup", child)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBeforeExec: a root slave calls BeforeExec with the caller's
// credentials before it starts a non-root process (a real node fetches the
// user's passwd entry there), skips it for root, and runs the process even
// when the hook fails.
func TestBeforeExec(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as another user")
	}
	var mu sync.Mutex
	var got []uint32
	m := newMaster(t, steady)
	root := startSlave(t, m, func(c *Config) {
		c.BeforeExec = func(ctx context.Context, cr wire.Cred) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, cr.UID)
			return errors.New("no kickbackproxy here")
		}
	})
	for _, d := range []string{filepath.Dir(root), root} {
		os.Chmod(d, 0o755)
	}
	s := m.next(t)
	for _, cr := range []wire.Cred{{UID: 65534, GID: 65534}, {}} {
		r := s.start(t, wire.Exec{Argv: []string{"id", "-u"}, Cred: cr}, program(t, "/usr/bin/id"), execOpts{})
		if r.err != "" {
			t.Fatalf("uid %d: start: %s", cr.UID, r.err)
		}
		if res := r.wait(t); res.Status != 0 || r.stdout.String() != fmt.Sprintf("%d\n", cr.UID) {
			t.Errorf("uid %d: got %+v, stdout %q", cr.UID, res, r.stdout.String())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != 65534 {
		t.Errorf("BeforeExec calls: got uids %v, want [65534] (none for root)", got)
	}
}

// TestBeforeExecOncePerUser: a hook that succeeded is not called again
// for the same user's next jobs (users.go); one that failed is, each
// time.
func TestBeforeExecOncePerUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as another user")
	}
	var calls atomic.Int32
	m := newMaster(t, steady)
	root := startSlave(t, m, func(c *Config) {
		c.BeforeExec = func(ctx context.Context, cr wire.Cred) error {
			if calls.Add(1); cr.UID == 65533 {
				return errors.New("no such user on the master")
			}
			return nil
		}
	})
	for _, d := range []string{filepath.Dir(root), root} {
		os.Chmod(d, 0o755)
	}
	s := m.next(t)
	run := func(uid uint32) {
		r := s.start(t, wire.Exec{Argv: []string{"true"}, Cred: wire.Cred{UID: uid, GID: uid}}, program(t, "/bin/true"), execOpts{})
		if r.err != "" {
			t.Fatalf("uid %d: start: %s", uid, r.err)
		}
		if res := r.wait(t); res.Status != 0 {
			t.Errorf("uid %d: got %+v", uid, res)
		}
	}
	for range 3 {
		run(65534)
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("three jobs of uid 65534: %d BeforeExec calls, want 1", got)
	}
	for range 2 {
		run(65533)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("then two of uid 65533, whose call fails: %d calls in all, want 3", got)
	}
}

// TestExecOutputStreamsLazy: the slave opens an output stream only for a
// descriptor the process writes to, names exactly those in the Result,
// and a silent process costs no stream at all (wire Version 3). With the
// streams opened eagerly a silent job would show two.
func TestExecOutputStreamsLazy(t *testing.T) {
	m := newMaster(t, steady)
	startSlave(t, m)
	s := m.next(t)
	sh := program(t, "/bin/sh")
	for _, tc := range []struct {
		name       string
		ex         wire.Exec
		wantOpened uint8
		wantOut    string
		wantErrOut string
	}{
		{"silent", wire.Exec{Argv: []string{"sh", "-c", "exit 0"}}, 0, "", ""},
		{"silent without stdin", wire.Exec{Argv: []string{"sh", "-c", "exit 0"}, NoStdin: true}, 0, "", ""},
		{"stdout only", wire.Exec{Argv: []string{"sh", "-c", "echo out"}}, wire.OpenedStdout, "out\n", ""},
		{"stderr only", wire.Exec{Argv: []string{"sh", "-c", "echo err >&2"}}, wire.OpenedStderr, "", "err\n"},
		{"both", wire.Exec{Argv: []string{"sh", "-c", "echo out; echo err >&2"}}, wire.OpenedStdout | wire.OpenedStderr, "out\n", "err\n"},
		{"remote stdout", wire.Exec{Argv: []string{"sh", "-c", "echo out"}, Stdout: "/lazy.txt"}, 0, "", ""},
		{"no io", wire.Exec{Argv: []string{"sh", "-c", "echo out; echo err >&2"}, NoIO: true}, 0, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.outputs.Load()
			r := s.start(t, tc.ex, sh, execOpts{})
			if r.err != "" {
				t.Fatalf("start: %s", r.err)
			}
			if res := r.wait(t); res != (wire.Result{}) {
				t.Errorf("got %+v, want status 0", res)
			}
			if r.opened != tc.wantOpened {
				t.Errorf("Result.Opened: got %b, want %b", r.opened, tc.wantOpened)
			}
			if got, want := s.outputs.Load()-before, int64(bits(tc.wantOpened)); got != want {
				t.Errorf("output streams the slave opened: got %d, want %d", got, want)
			}
			if r.stdout.String() != tc.wantOut || r.stderr.String() != tc.wantErrOut {
				t.Errorf("got stdout %q stderr %q, want %q %q", r.stdout.String(), r.stderr.String(), tc.wantOut, tc.wantErrOut)
			}
		})
	}
}

// TestExecUpdatesBeforeResult: the job's process is reported Gone
// before the Result only when processes it left keep the job going, and
// the Result after any Update still names every output stream. The
// flake this pins down: a job slowed past kidFirst on a loaded machine
// had its process reported Gone though that was its last, and a reader
// taking the first frame after Started for the Result (the fake master
// did) saw Opened 0 and lost the output.
func TestExecUpdatesBeforeResult(t *testing.T) {
	m := newMaster(t, steady)
	root := startSlave(t, m)
	s := m.next(t)
	sh := program(t, "/bin/sh")

	// Alone: its process outlives the watcher's first look (kidFirst)
	// and is the last of the job.
	gate := make(chan struct{})
	time.AfterFunc(4*kidFirst, func() { close(gate) })
	r := s.start(t, wire.Exec{Argv: []string{"sh", "-c", `read x; echo "$x"`}}, sh, execOpts{stdin: "late\n", stdinGate: gate})
	if r.err != "" {
		t.Fatalf("start: %s", r.err)
	}
	if res := r.wait(t); res != (wire.Result{}) || r.opened != wire.OpenedStdout || r.stdout.String() != "late\n" {
		t.Errorf("alone: got %+v, opened %b, stdout %q; want status 0, stdout opened, %q", res, r.opened, r.stdout.String(), "late\n")
	}
	for _, u := range r.procs() {
		if u.PID == r.pid {
			t.Errorf("alone: its process reported before the Result (%+v), though nothing of the job was left", u)
		}
	}

	if !jobsInCgroups() {
		t.Skip("jobs run without cgroups here: no Updates")
	}
	// With a child: its process exits (stdin tells it when) while its
	// child holds the output, until the file go appears.
	gate = make(chan struct{})
	r = s.start(t, wire.Exec{Argv: []string{"sh", "-c", `echo first; (while [ ! -e go ]; do sleep 0.01; done; echo second) & read x; exit 5`}},
		sh, execOpts{stdin: "\n", stdinGate: gate})
	if r.err != "" {
		t.Fatalf("start: %s", r.err)
	}
	r.until(t, "the child", func(u wire.ProcChange) bool { return u.PID != r.pid && !u.Gone }) // the watcher has looked
	close(gate)
	r.until(t, "its process gone", func(u wire.ProcChange) bool { return u.PID == r.pid && u.Gone })
	if ps := r.procs(); ps[len(ps)-1].Status != 5 || ps[len(ps)-1].Signal != 0 {
		t.Errorf("with a child: its process reported %+v, want Gone with status 5", ps[len(ps)-1])
	}
	if err := os.WriteFile(filepath.Join(root, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if res := r.wait(t); res != (wire.Result{Status: 5}) || r.opened != wire.OpenedStdout || r.stdout.String() != "first\nsecond\n" {
		t.Errorf("with a child: got %+v, opened %b, stdout %q; want status 5, stdout opened, %q", res, r.opened, r.stdout.String(), "first\nsecond\n")
	}
}

// jobsInCgroups reports whether a slave started here runs its jobs in
// cgroups (cgroup.go): as root, or with a delegated group.
func jobsInCgroups() bool {
	j := openJobs("", slog.New(slog.DiscardHandler))
	defer j.close()
	return j.on()
}

func bits(b uint8) int {
	n := 0
	for ; b != 0; b &= b - 1 {
		n++
	}
	return n
}

// TestExecOutputBeforeExit: output written in the process's last instant
// is in a stream the Result names, whole, however the streams race it.
func TestExecOutputBeforeExit(t *testing.T) {
	m := newMaster(t, steady)
	startSlave(t, m)
	s := m.next(t)
	sh := program(t, "/bin/sh")
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.start(t, wire.Exec{Argv: []string{"sh", "-c", "printf x; printf y >&2; exit 3"}}, sh, execOpts{})
			if r.err != "" {
				t.Errorf("run %d: %s", i, r.err)
				return
			}
			if res := r.wait(t); res != (wire.Result{Status: 3}) || r.stdout.String() != "x" || r.stderr.String() != "y" {
				t.Errorf("run %d: got %+v, stdout %q, stderr %q; want status 3, x, y", i, res, r.stdout.String(), r.stderr.String())
			}
		}()
	}
	wg.Wait()
}

// TestExecChildStatus: a child the job forks on the node is reported
// gone with how it ended — its exit code, or the signal that killed it —
// from the kernel's process connector (exits.go), though bpslave is not
// its parent: its ghost ends the same way.
func TestExecChildStatus(t *testing.T) {
	if os.Geteuid() != 0 || !jobsInCgroups() {
		t.Skip("needs root and jobs in cgroups: the process connector, the job's children")
	}
	m := newMaster(t, steady)
	startSlave(t, m)
	s := m.next(t)
	sh := program(t, "/bin/sh")
	r := s.start(t, wire.Exec{Argv: []string{"sh", "-c",
		`sh -c 'sleep 0.4; exit 3' & sleep 30 & k=$!; sleep 0.8; kill -TERM $k; sleep 1.5`}}, sh, execOpts{})
	if r.err != "" {
		t.Fatalf("start: %s", r.err)
	}
	r.until(t, "the child that exits 3", func(u wire.ProcChange) bool { return u.Gone && u.Status == 3 })
	r.until(t, "the child killed by SIGTERM", func(u wire.ProcChange) bool { return u.Gone && u.Signal == int(syscall.SIGTERM) })
	if res := r.wait(t); res != (wire.Result{}) {
		t.Errorf("the job: %+v, want status 0", res)
	}
	// A parent that waits for its child ends right after it, between
	// two of the watcher's looks (50, 150, 350, 750 ms…): the child's
	// end still comes before the Result (the last look), or its ghost
	// would be killed with the job.
	r = s.start(t, wire.Exec{Argv: []string{"sh", "-c", `sh -c 'sleep 0.6; exit 5' & wait`}}, sh, execOpts{})
	if r.err != "" {
		t.Fatalf("start: %s", r.err)
	}
	r.until(t, "the child that exits 5 just before its parent", func(u wire.ProcChange) bool { return u.Gone && u.Status == 5 })
	if res := r.wait(t); res != (wire.Result{}) {
		t.Errorf("the job: %+v, want status 0", res)
	}
}

// TestJobSession: a job leads a process group of its own, and a session
// of its own only with Config.JobSessions (a real node: moves need it);
// on beo sim's nodes it stays in bpslave's session (exec.go jobSys).
func TestJobSession(t *testing.T) {
	for _, sessions := range []bool{false, true} {
		m := newMaster(t, steady)
		startSlave(t, m, func(c *Config) { c.JobSessions = sessions })
		s := m.next(t)
		// The shell's own /proc/self/stat: pid, (comm), state, ppid, pgrp, session.
		r := s.start(t, wire.Exec{Argv: []string{"sh", "-c", "read -r l < /proc/self/stat; echo $l"}}, program(t, "/bin/sh"), execOpts{})
		if r.err != "" {
			t.Fatal(r.err)
		}
		res := r.wait(t)
		out := r.stdout.String()
		f := strings.Fields(out)
		if res.Status != 0 || len(f) < 6 {
			t.Fatalf("sessions %v: %q, %+v", sessions, out, res)
		}
		pid, pgrp, sid := f[0], f[4], f[5]
		if pgrp != pid {
			t.Errorf("sessions %v: process group %s, want its own (%s)", sessions, pgrp, pid)
		}
		if leads := sid == pid; leads != sessions {
			t.Errorf("sessions %v: session %s of pid %s: leads it %v, want %v", sessions, sid, pid, leads, sessions)
		}
	}
}

// TestResumeStopped: the continue of a process that stops itself to
// move or fork (wire.Signal.Stopped, after a failed move) reaches it
// once it has stopped, even when it comes first: a plain SIGCONT before
// the stop would be lost, and the process stopped for good.
func TestResumeStopped(t *testing.T) {
	m := newMaster(t, steady)
	startSlave(t, m)
	s := m.next(t)
	r := s.start(t, wire.Exec{Argv: []string{"sh", "-c", "sleep 0.3; kill -STOP $$; echo resumed"}}, program(t, "/bin/sh"), execOpts{})
	if r.err != "" {
		t.Fatal(r.err)
	}
	if err := wire.Write(r.st, wire.Signal{Sig: int(syscall.SIGCONT), Stopped: true}); err != nil {
		t.Fatal(err)
	}
	if res := r.wait(t); res != (wire.Result{}) || r.stdout.String() != "resumed\n" {
		t.Errorf("got %+v, output %q; want status 0, \"resumed\"", res, r.stdout.String())
	}
}
