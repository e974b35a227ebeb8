// Package move measures process migration on real PXE-booted QEMU nodes
// (pkg/lab): how long `bpmove PID 1` takes to move a process with 1, 64
// and 512 MiB resident from node 0 to node 1, against the raw TCP
// throughput of the same link in the same run (the floor: the image goes
// node 0 → master → node 1), with and without the target's content cache
// holding the program, CRIU and its libraries. It runs only from
// bench/move/run (BEO_BENCH_MOVE=1); see README.md for the numbers.
package move

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/criu"
	"github.com/beo-cluster/beo/pkg/lab"
)

// sample is one move: bpmove's wall time, the image's bytes, the
// source's CRIU dump (its log's took=), the load average when it ended.
type sample struct {
	move, dump time.Duration
	image      int64
	load       float64
	// The master's phases (its "moved" log line): checkpoint, upload,
	// files, download, restore.
	phases [5]time.Duration
}

var phaseNames = [5]string{"checkpoint", "upload", "files", "download", "restore"}

// floor is one raw-link measurement of the image's bytes: node 0 →
// master and master → node 1, each timed by the node; and bpcp of as
// many bytes master → node 1 (beo's own link: TLS + yamux).
type floor struct{ up, down, bpcp time.Duration }

type bench struct {
	t              *testing.T
	ctx            context.Context
	c              *lab.Cluster
	exe, hog, blst string
	blastAddr      string
}

func TestMove(t *testing.T) {
	if os.Getenv("BEO_BENCH_MOVE") == "" {
		t.Skip("run by bench/move/run")
	}
	rounds := envInt("ROUNDS", 3)
	var sizes []int
	for _, s := range strings.Split(env("SIZES", "1,64,512"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("SIZES: %v", err)
		}
		sizes = append(sizes, n)
	}
	if _, err := os.Stat("/usr/sbin/criu"); err != nil {
		t.Skipf("criu is not installed on the master: %v", err)
	}
	kernel, _, err := lab.Kernel("/")
	if err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Minute)
	defer cancel()
	b := &bench{t: t, ctx: ctx, exe: os.Getenv("BEO_BIN")}
	bin := t.TempDir()
	os.Chmod(bin, 0o755)
	b.hog, b.blst = build(t, bin, "hog"), build(t, bin, "blast")

	// The nodes are diskless: a 512 MiB process, its dump and the tar of
	// it (source), or the image and the restored copy (target), all live
	// in their RAM.
	// CPU=max gives the nodes the emulated CPU's AES-NI (and the rest of
	// TCG's features); the default model (qemu64) has none, so a node's
	// TLS runs ChaCha20-Poly1305 in plain Go, emulated.
	var qemuArgs []string
	if cpu := os.Getenv("CPU"); cpu != "" {
		qemuArgs = []string{"-cpu", cpu}
	}
	c, err := lab.StartCluster(ctx, lab.ClusterOptions{Exe: b.exe, Dir: t.TempDir(), Listed: 2, Kernel: kernel, Boot: true,
		Accel: env("ACCEL", "tcg"), Memory: env("MEM", "2560M"), Config: "bootmodule " + strings.Join(criu.Modules, " ") + "\n", QEMUArgs: qemuArgs})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b.c = c
	if err := c.WaitUp(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	b.blastAddr = c.Lab.Addr.Addr().String() + ":5002"
	srv, err := c.Lab.Start("blast", []string{b.blst, "-serve", b.blastAddr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(time.Second)

	// One move not counted: node 0, the source of every move, gets CRIU
	// (a checkpoint ships it as it does to a target), so that only the
	// target's cache differs between the two cases.
	b.moveOnce(1)

	got := map[string][]sample{}
	floors := map[int][]floor{}
	for r := range rounds {
		for _, size := range sizes {
			// Without: node 1 boots again, so its RAM root and content
			// cache are what the initrd gave it — it has never seen
			// the program, CRIU or CRIU's libraries.
			b.reboot(1)
			for _, kind := range []string{"without", "with"} {
				s := b.moveOnce(size)
				t.Logf("round %d, %d MiB, %s cache: %+v", r, size, kind, s)
				key := fmt.Sprintf("%d %s", size, kind)
				got[key] = append(got[key], s)
			}
			img := got[fmt.Sprintf("%d without", size)][r].image
			f := floor{up: b.blast(0, "-put", img), down: b.blast(1, "-get", img), bpcp: b.bpcp(1, img)}
			t.Logf("round %d, %d MiB, floor for %d bytes: %+v", r, size, img, f)
			floors[size] = append(floors[size], f)
		}
	}

	fmt.Printf("\n2 QEMU nodes (%s%s, %s each), median of %d (min–max); floor = raw TCP node 0 → master + master → node 1 of the image's bytes, same run\n\n",
		c.Accel, strings.Join(append([]string{""}, qemuArgs...), " "), env("MEM", "2560M"), rounds)
	fmt.Printf("| resident | image | target's cache | bpmove | floor (up + down) | bpmove / floor | bpcp of the image's bytes to node 1 | load average |\n|---|---|---|---|---|---|---|---|\n")
	for _, size := range sizes {
		var fl, up, down, cp []time.Duration
		for _, f := range floors[size] {
			fl = append(fl, f.up+f.down)
			up = append(up, f.up)
			down = append(down, f.down)
			cp = append(cp, f.bpcp)
		}
		for _, kind := range []string{"without", "with"} {
			ss := got[fmt.Sprintf("%d %s", size, kind)]
			var mv []time.Duration
			var ratio []float64
			var img []int64
			lmin, lmax := 1e9, 0.0
			for i, s := range ss {
				mv = append(mv, s.move)
				img = append(img, s.image)
				// The ratio of each round to its own floor.
				ratio = append(ratio, s.move.Seconds()/fl[i].Seconds())
				lmin, lmax = min(lmin, s.load), max(lmax, s.load)
			}
			sort.Slice(img, func(i, j int) bool { return img[i] < img[j] })
			fmt.Printf("| %d MiB | %.1f MiB | %s | %s | %s (%s + %s) | %s× | %s | %.1f–%.1f |\n", size, float64(img[len(img)/2])/(1<<20), kind,
				spread(mv), spread(fl), med(up), med(down), ratios(ratio), spread(cp), lmin, lmax)
		}
	}
	phaseTable(sizes, got)

	// What the link's crypto costs a node: TLS 1.3 over loopback on node
	// 1, both ends there (so each byte is sealed and opened on its CPU,
	// as the image's bytes are on a node's end of the link).
	var tlsTimes []time.Duration
	var suite string
	for range rounds {
		out, err := b.beo("bpsh", "1", b.blst, "-tls", "-bytes", strconv.Itoa(64<<20))
		f := strings.Fields(out)
		if err != nil || len(f) != 2 {
			t.Fatalf("blast -tls: %q, %v", out, err)
		}
		s, _ := strconv.ParseFloat(f[0], 64)
		tlsTimes = append(tlsTimes, time.Duration(s*float64(time.Second)))
		suite = f[1]
	}
	m := sorted(tlsTimes)[len(tlsTimes)/2]
	fmt.Printf("\nTLS 1.3 over loopback on node 1 (%s, both ends on the node), 64 MiB: %s, %.1f MiB/s (median of %d)\n", suite, spread(tlsTimes), 64/m.Seconds(), rounds)
}

// phaseTable prints where the moves' time went, medians.
func phaseTable(sizes []int, got map[string][]sample) {
	fmt.Printf("\nWhere bpmove's time went (the master's log; medians): the source's checkpoint (of it CRIU's dump, the source's log), the image node 0 → master (the tar streamed from the dump), the files node 1 lacked, the image master → node 1, CRIU's restore\n\n")
	fmt.Printf("| resident | target's cache | bpmove | checkpoint | (CRIU dump) | upload | files | download | restore |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, size := range sizes {
		for _, kind := range []string{"without", "with"} {
			ss := got[fmt.Sprintf("%d %s", size, kind)]
			col := func(f func(sample) time.Duration) string {
				var ds []time.Duration
				for _, s := range ss {
					ds = append(ds, f(s))
				}
				return med(ds)
			}
			fmt.Printf("| %d MiB | %s | %s", size, kind, col(func(s sample) time.Duration { return s.move }))
			for i := range phaseNames {
				fmt.Printf(" | %s", col(func(s sample) time.Duration { return s.phases[i] }))
				if i == 0 {
					fmt.Printf(" | %s", col(func(s sample) time.Duration { return s.dump }))
				}
			}
			fmt.Printf(" |\n")
		}
	}
}

// build compiles ./NAME (static) into dir.
func build(t *testing.T, dir, name string) string {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, "./"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	return out
}

// beo runs an applet of the binary under test against the lab's master.
func (b *bench) beo(args ...string) (string, error) {
	cmd := exec.CommandContext(b.ctx, b.exe, args...)
	cmd.Env = append(os.Environ(), bproc.SocketEnv+"="+b.c.Socket)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		err = fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, ee.Stderr)
	}
	return string(out), err
}

// reboot reboots node n (bpctl -R) and waits until it is up again.
func (b *bench) reboot(n int) {
	t := b.t
	m := b.c.Machines[n]
	mark, since := m.Mark(), time.Now()
	if _, err := b.beo("bpctl", "-S", strconv.Itoa(n), "-R"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Minute)
	defer cancel()
	if _, _, err := m.WaitSerial(ctx, "Linux version", mark); err != nil {
		t.Fatalf("node %d did not boot again: %v", n, err)
	}
	for left := false; !left; {
		for _, e := range b.c.Events() {
			left = left || (e.Node == n && e.T.After(since) && e.State != "up")
		}
		if !left {
			select {
			case <-ctx.Done():
				t.Fatalf("node %d never left up", n)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if err := b.c.WaitUp(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// job is a `bpsh 0 hog` in the background, its stdout read line by line.
type job struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan error
}

func (j *job) waitLine(ctx context.Context, re *regexp.Regexp, from int) (int, error) {
	for {
		j.mu.Lock()
		for i := from; i < len(j.lines); i++ {
			if re.MatchString(j.lines[i]) {
				j.mu.Unlock()
				return i, nil
			}
		}
		n := len(j.lines)
		j.mu.Unlock()
		select {
		case err := <-j.done:
			j.done <- err
			return n, fmt.Errorf("hog ended: %v; output %q", err, j.output())
		case <-ctx.Done():
			return n, fmt.Errorf("no line %q: %w; output %q", re, ctx.Err(), j.output())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (j *job) output() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return strings.Join(j.lines, "\n")
}

var (
	ready = regexp.MustCompile(`^ready `)
	tick  = regexp.MustCompile(`^tick `)
	moved = regexp.MustCompile(`msg=moved .* image=(\d+) took=\S+ checkpoint=(\S+) upload=(\S+) files=(\S+) download=(\S+) restore=(\S+)`)
	dump  = regexp.MustCompile(`msg=checkpointed .* took=(\S+)`)
)

// moveOnce starts a hog of size MiB on node 0, moves it to node 1, checks
// it runs there with its memory intact, and ends it.
func (b *bench) moveOnce(size int) sample {
	t := b.t
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Minute)
	defer cancel()
	j := &job{done: make(chan error, 1)}
	j.cmd = exec.CommandContext(ctx, b.exe, "bpsh", "0", b.hog, "-mib", strconv.Itoa(size))
	j.cmd.Env = append(os.Environ(), bproc.SocketEnv+"="+b.c.Socket)
	out, err := j.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	j.cmd.Stderr = os.Stderr
	if err := j.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			j.mu.Lock()
			j.lines = append(j.lines, sc.Text())
			j.mu.Unlock()
		}
		io.Copy(io.Discard, out)
		close(read)
	}()
	go func() { <-read; j.done <- j.cmd.Wait() }()
	defer func() { j.cmd.Process.Kill() }()
	if _, err := j.waitLine(ctx, ready, 0); err != nil {
		t.Fatal(err)
	}
	ghost := b.ghost(j.cmd.Process.Pid, 0)
	before := fileSize(b.c.Master.Log)
	serialBefore := fileSize(b.c.Machines[0].Serial)

	start := time.Now()
	if out, err := b.beo("bpmove", strconv.Itoa(ghost), "1"); err != nil {
		t.Fatalf("bpmove of %d MiB: %v", size, err)
	} else if !strings.HasPrefix(out, fmt.Sprintf("%d: node 0 -> node 1 ", ghost)) {
		t.Fatalf("bpmove printed %q", out)
	}
	s := sample{move: time.Since(start), load: loadavg()}
	if g := b.ghost(j.cmd.Process.Pid, 1); g != ghost {
		t.Fatalf("after the move the ghost is %d, want %d", g, ghost)
	}
	// It goes on on node 1.
	j.mu.Lock()
	n := len(j.lines)
	j.mu.Unlock()
	if _, err := j.waitLine(ctx, tick, n); err != nil {
		t.Fatalf("after the move: %v", err)
	}
	if m := moved.FindAllStringSubmatch(tailFrom(b.c.Master.Log, before), -1); m != nil {
		l := m[len(m)-1]
		s.image, _ = strconv.ParseInt(l[1], 10, 64)
		for i := range s.phases {
			s.phases[i], _ = time.ParseDuration(l[2+i])
		}
	}
	if m := dump.FindAllStringSubmatch(tailFrom(b.c.Machines[0].Serial, serialBefore), -1); m != nil {
		s.dump, _ = time.ParseDuration(m[len(m)-1][1])
	}
	// SIGTERM to the ghost reaches it on node 1: it checks its memory.
	syscall.Kill(ghost, syscall.SIGTERM)
	select {
	case err := <-j.done:
		if err != nil {
			t.Fatalf("hog after the move: %v; output %q", err, j.output())
		}
	case <-ctx.Done():
		t.Fatalf("hog did not end: output %q", j.output())
	}
	if o := j.output(); !strings.HasSuffix(o, "intact") {
		t.Fatalf("hog's memory after the move: %q", o[max(0, len(o)-200):])
	}
	return s
}

// ghost waits until the job of client pid runs on node n and returns
// its ghost's pid.
func (b *bench) ghost(client, n int) int {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Minute)
	defer cancel()
	for {
		cl, err := bproc.Dial(ctx, b.c.Socket)
		if err == nil {
			procs, err := cl.Procs(ctx)
			cl.Close()
			if err == nil {
				for _, p := range procs {
					if p.Client == client && p.Node == n && p.Parent == 0 && p.Ghost != 0 && p.Ghost != client {
						return p.Ghost
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			b.t.Fatalf("no process of bpsh %d on node %d", client, n)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// bpcp times `bpcp` of a file of size bytes from the master to node n
// (through beo's link, written to the node's RAM root), and removes it.
func (b *bench) bpcp(n int, size int64) time.Duration {
	f, err := os.CreateTemp(b.t.TempDir(), "bpcp-")
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{1}), size); err != nil {
		b.t.Fatal(err)
	}
	f.Close()
	start := time.Now()
	if _, err := b.beo("bpcp", f.Name(), fmt.Sprintf("%d:/tmp/bpcp", n)); err != nil {
		b.t.Fatal(err)
	}
	d := time.Since(start)
	os.Remove(f.Name())
	if _, err := b.beo("bpsh", strconv.Itoa(n), "rm", "-f", "/tmp/bpcp"); err != nil {
		b.t.Fatal(err)
	}
	return d
}

// blast times size bytes over the raw link between node n and the
// master (dir -put: node → master, -get: master → node).
func (b *bench) blast(n int, dir string, size int64) time.Duration {
	out, err := b.beo("bpsh", strconv.Itoa(n), b.blst, dir, b.blastAddr, "-bytes", strconv.FormatInt(size, 10))
	if err != nil {
		b.t.Fatal(err)
	}
	s, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
	if err != nil {
		b.t.Fatalf("blast: %q", out)
	}
	return time.Duration(s * float64(time.Second))
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// tailFrom is file p from offset off on.
func tailFrom(p string, off int64) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	f.Seek(off, io.SeekStart)
	bs, _ := io.ReadAll(f)
	return string(bs)
}

func loadavg() float64 {
	bs, _ := os.ReadFile("/proc/loadavg")
	f, _ := strconv.ParseFloat(strings.Fields(string(bs) + " 0")[0], 64)
	return f
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil && n > 0 {
		return n
	}
	return def
}

func sorted(ds []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

func med(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	return secs(sorted(ds)[len(ds)/2])
}

// spread is "median (min–max)".
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	s := sorted(ds)
	return fmt.Sprintf("%s (%s–%s)", secs(s[len(s)/2]), secs(s[0]), secs(s[len(s)-1]))
}

// ratios is "median (min–max)" of rs.
func ratios(rs []float64) string {
	s := append([]float64(nil), rs...)
	sort.Float64s(s)
	return fmt.Sprintf("%.1f (%.1f–%.1f)", s[len(s)/2], s[0], s[len(s)-1])
}

func secs(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.0f ms", d.Seconds()*1000)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}
