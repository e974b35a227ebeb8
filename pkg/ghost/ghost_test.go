package ghost

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestImage: the committed image is what the source assembles to
// (skipped without GNU as and objcopy).
func TestImage(t *testing.T) {
	if _, err := exec.LookPath("as"); err != nil {
		t.Skip("no GNU as")
	}
	if _, err := exec.LookPath("objcopy"); err != nil {
		t.Skip("no objcopy")
	}
	dir := t.TempDir()
	if out, err := exec.Command("as", "--64", "-o", filepath.Join(dir, "g.o"), "ghost_amd64.asm").CombinedOutput(); err != nil {
		t.Fatalf("as: %v\n%s", err, out)
	}
	if out, err := exec.Command("objcopy", "-O", "binary", "-j", ".text", filepath.Join(dir, "g.o"), filepath.Join(dir, "g.bin")).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "g.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, image) {
		t.Errorf("image_amd64.go (%d bytes) is not what ghost_amd64.asm assembles to (%d bytes): run go generate ./pkg/ghost", len(image), len(b))
	}
}

// recorder collects forwarded signals.
type recorder chan syscall.Signal

func (r recorder) forward(s syscall.Signal) { r <- s }

// want waits for sig to be forwarded.
func (r recorder) want(t *testing.T, want syscall.Signal) {
	t.Helper()
	for {
		select {
		case got := <-r:
			if got != want {
				t.Fatalf("forwarded %v, want %v", got, want)
			}
			return
		case <-time.After(5 * time.Second):
			t.Fatalf("%v not forwarded", want)
		}
	}
}

func (r recorder) none(t *testing.T) {
	t.Helper()
	select {
	case got := <-r:
		t.Fatalf("forwarded %v, want nothing", got)
	case <-time.After(100 * time.Millisecond):
	}
}

func start(t *testing.T, s *Spawner, argv ...string) (*Ghost, recorder) {
	t.Helper()
	rec := make(recorder, 16)
	g, err := s.Start(Config{Argv: argv, Env: []string{"BPROC_NODE=3"}, Forward: rec.forward})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(g.Pid, syscall.SIGKILL); g.Status() })
	name := filepath.Base(argv[0])
	name = name[:min(len(name), 15)] // the kernel keeps 15 bytes
	waitFor(t, "the ghost runs", func() bool { return comm(g.Pid) == name })
	return g, rec
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 5 s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(strings.TrimSuffix(string(b), "\x00"), "\x00", " ")
}

// TestGhost: what ps shows, every kind of signal forwarded, an exec
// shown, and the remote exit code made the ghost's.
func TestGhost(t *testing.T) {
	var s Spawner
	g, rec := start(t, &s, "/usr/bin/my-long-program-name", "-x", "[node 3]")
	if got := cmdline(g.Pid); got != "/usr/bin/my-long-program-name -x [node 3]" {
		t.Errorf("cmdline %q", got)
	}
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", g.Pid)); string(b) != "BPROC_NODE=3\x00" {
		t.Errorf("environ %q", b)
	}
	if ppid := ppidOf(g.Pid); ppid != os.Getpid() {
		t.Errorf("parent %d, want this process %d", ppid, os.Getpid())
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGTSTP, syscall.SIGHUP, syscall.SIGWINCH} {
		syscall.Kill(g.Pid, sig)
		rec.want(t, sig)
	}
	syscall.Kill(g.Pid, syscall.SIGSTOP)
	rec.want(t, syscall.SIGSTOP)
	if st := procState(g.Pid); st != 'T' {
		t.Errorf("state %c after SIGSTOP, want T", st)
	}
	syscall.Kill(g.Pid, syscall.SIGCONT)
	rec.want(t, syscall.SIGCONT)
	waitFor(t, "running again", func() bool { return procState(g.Pid) == 'S' })
	if err := g.Exec([]string{"sleep", "100", "[node 3]"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the exec shown", func() bool { return cmdline(g.Pid) == "sleep 100 [node 3]" && comm(g.Pid) == "sleep" })
	syscall.Kill(g.Pid, syscall.SIGQUIT) // after the exec too
	rec.want(t, syscall.SIGQUIT)
	g.Exit(7)
	ws, err := g.Status()
	if err != nil || !ws.Exited() || ws.ExitStatus() != 7 {
		t.Errorf("status %v %v, want exit 7", ws, err)
	}
	rec.none(t)
}

// TestGhostDies: told to die of a signal, a ghost does (no core file,
// nothing forwarded); a stopped one too.
func TestGhostDies(t *testing.T) {
	var s Spawner
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGKILL, syscall.SIGSEGV} {
		g, rec := start(t, &s, "ghost", fmt.Sprint(sig))
		syscall.Kill(g.Pid, syscall.SIGSTOP)
		rec.want(t, syscall.SIGSTOP)
		g.Die(sig)
		ws, err := g.Status()
		if err != nil || !ws.Signaled() || ws.Signal() != sig || ws.CoreDump() {
			t.Errorf("%v: status %v (core %v) %v, want killed by it", sig, ws, ws.CoreDump(), err)
		}
		rec.none(t)
	}
}

// TestGhostKilled: a SIGKILL, which the ghost cannot catch, is
// forwarded when the ghost is reaped.
func TestGhostKilled(t *testing.T) {
	var s Spawner
	g, rec := start(t, &s, "victim")
	syscall.Kill(g.Pid, syscall.SIGKILL)
	rec.want(t, syscall.SIGKILL)
	if ws, _ := g.Status(); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("status %v", ws)
	}
}

// TestGhostOrphaned: a ghost whose spawner is gone ends.
func TestGhostOrphaned(t *testing.T) {
	var s Spawner
	g, _ := start(t, &s, "orphan")
	g.conn.Close() // what the spawner's death does to its end
	select {
	case <-g.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the ghost outlived its socket")
	}
}

func ppidOf(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	n, _ := strconv.Atoi(f[1])
	return n
}

var pssRe = regexp.MustCompile(`(?m)^Pss:\s+(\d+) kB`)

// BenchmarkGhosts starts N ghosts (b.N rounds), reports the start time
// per ghost and the PSS of each (smaps_rollup) while all N run.
func BenchmarkGhosts(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var s Spawner
			if _, err := s.program(); err != nil {
				b.Skip(err)
			}
			var start time.Duration
			var pss float64
			for b.Loop() {
				gs := make([]*Ghost, 0, n)
				t0 := time.Now()
				for i := range n {
					g, err := s.Start(Config{Argv: []string{"sleep", strconv.Itoa(i), "[node 0]"}, Forward: func(syscall.Signal) {}})
					if err != nil {
						b.Fatal(err)
					}
					gs = append(gs, g)
				}
				start += time.Since(t0)
				b.StopTimer()
				for _, g := range gs { // every ghost has run and set itself up
					for comm(g.Pid) != "sleep" {
						time.Sleep(time.Millisecond)
					}
				}
				total := 0
				for _, g := range gs {
					sm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", g.Pid))
					if m := pssRe.FindSubmatch(sm); m != nil {
						v, _ := strconv.Atoi(string(m[1]))
						total += v
					}
				}
				pss += float64(total) / float64(n)
				for _, g := range gs {
					g.Exit(0)
				}
				for _, g := range gs {
					g.Status()
				}
				b.StartTimer()
			}
			rounds := float64(b.N)
			b.ReportMetric(float64(start.Microseconds())/rounds/float64(n), "µs/ghost")
			b.ReportMetric(pss/rounds, "PSS-KiB/ghost")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// TestGhostHold: a ghost held and released for its client's job control
// stops and resumes without forwarding anything; a stop sent to it
// afterwards is forwarded as ever.
func TestGhostHold(t *testing.T) {
	var s Spawner
	g, rec := start(t, &s, "held")
	g.Hold()
	waitFor(t, "held", func() bool { return procState(g.Pid) == 'T' })
	g.Hold() // already stopped: nothing
	g.Release()
	waitFor(t, "released", func() bool { return procState(g.Pid) == 'S' })
	rec.none(t)
	syscall.Kill(g.Pid, syscall.SIGSTOP)
	rec.want(t, syscall.SIGSTOP)
	syscall.Kill(g.Pid, syscall.SIGCONT)
	rec.want(t, syscall.SIGCONT)
}
