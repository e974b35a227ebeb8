package cluster

import (
	"bytes"
	"context"
	"net"
	"net/netip"
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
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/sim"
	"github.com/beo-cluster/beo/pkg/stats"
)

// The MPI programs: hello says where each rank ran (the node whose
// directory is the upper layer of its view, -1 outside one: the master,
// or a simulation without views) and checks an allreduce of the ranks;
// ring loops on allreduces until killed, rank 0 saying "ready" once.
const (
	helloC = `#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int node(void) {
	char line[4096];
	int n = -1;
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f) return -1;
	while (fgets(line, sizeof line, f)) {
		char *u = strstr(line, "upperdir="), *p;
		if (u && (p = strstr(u, "/nodes/"))) { n = atoi(p + 7); break; }
	}
	fclose(f);
	return n;
}
int main(int argc, char **argv) {
	int rank, size, sum = -1;
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
	printf("rank %d of %d on node %d sum %d\n", rank, size, node(), sum);
	MPI_Finalize();
	return sum == size * (size - 1) / 2 ? 0 : 3;
}
`
	ringC = `#include <mpi.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
	int rank, sum, i;
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	for (i = 0; i < 1200; i++) {
		MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
		if (i == 0 && rank == 0) { printf("ready\n"); fflush(stdout); }
		usleep(100000);
	}
	MPI_Finalize();
	return 0;
}
`
)

// launcher is one stock MPI: its compiler and its mpirun.
type launcher struct {
	name, cc, run string
	np            string // mpirun's option for the number of processes
	hostfile      string // mpirun's option for a hostfile
}

var launchers = []launcher{
	{"openmpi", "mpicc.openmpi", "mpirun.openmpi", "-np", "--hostfile"},
	{"mpich", "mpicc.mpich", "mpirun.mpich", "-n", "-f"},
}

// mpiUser is who runs the MPI jobs: nobody when the test is root (OpenMPI
// refuses root, and users are who runs MPI), else the test's own user.
func mpiUser(t *testing.T, c *sim.Cluster) *syscall.Credential {
	if os.Getuid() != 0 {
		return nil
	}
	openUp(t, c)
	return nobody
}

// userEnv is what a user of c has in their shell: BEO_SOCKET,
// BEOSTAT_URL, the links on PATH, and the one line `. DIR/mpi/env.sh`.
func userEnv(c *sim.Cluster, extra ...string) []string {
	env := []string{bproc.SocketEnv + "=" + c.Socket, "HOME=/", "PATH=" + filepath.Dir(beoBin) + ":/usr/local/bin:/usr/bin:/bin"}
	for _, e := range os.Environ() {
		if k, _, _ := strings.Cut(e, "="); k == "LANG" || k == "TMPDIR" {
			env = append(env, e)
		}
	}
	if c.StatsURL != "" {
		env = append(env, dashboard.URLEnv+"="+c.StatsURL)
	}
	env = append(env, c.MPIEnv()...)
	return append(env, extra...)
}

// runUser runs argv as cred (nil: the test's user) in dir with env,
// for at most d.
func runUser(t *testing.T, cred *syscall.Credential, dir string, env []string, d time.Duration, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir, cmd.Env = dir, env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%v: still running after %s; stdout %q stderr %q", argv, d, o.String(), e.String())
	}
	return result{o.String(), e.String(), code}
}

// build compiles src with every launcher's compiler into dir (which the
// nodes must see) and returns the programs by launcher name; it skips
// the test when an MPI is not installed.
func build(t *testing.T, dir, name, src string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range launchers {
		if _, err := exec.LookPath(l.cc); err != nil {
			t.Skipf("%s not installed (Debian: openmpi-bin libopenmpi-dev mpich libmpich-dev): %v", l.cc, err)
		}
		if _, err := exec.LookPath(l.run); err != nil {
			t.Skipf("%s not installed: %v", l.run, err)
		}
		c := filepath.Join(dir, name+".c")
		if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, name+"-"+l.name)
		if b, err := exec.Command(l.cc, "-O", "-o", bin, c).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", l.cc, err, b)
		}
		out[l.name] = bin
	}
	return out
}

// progDir is where the test's MPI programs go: inside the cluster's
// directory, so openUp lets nobody reach them. The nodes see it through
// their view of the host's root, unless /tmp is a mount of its own.
func progDir(t *testing.T, c *sim.Cluster) string {
	d := filepath.Join(c.Dir, "prog")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	var a, b syscall.Stat_t
	if syscall.Stat("/tmp", &a) == nil && syscall.Stat("/", &b) == nil && a.Dev != b.Dev && os.Getuid() == 0 {
		t.Skip("/tmp is a file system of its own: the simulated nodes' views do not show the programs built there")
	}
	return d
}

var rankLine = regexp.MustCompile(`^rank (\d+) of (\d+) on node (-?\d+) sum (\d+)$`)

// placement parses hello's output into rank → node, checking the sizes
// and the allreduce.
func placement(t *testing.T, out string, np int) []int {
	t.Helper()
	nodes := make([]int, np)
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		m := rankLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		r, _ := strconv.Atoi(m[1])
		size, _ := strconv.Atoi(m[2])
		node, _ := strconv.Atoi(m[3])
		sum, _ := strconv.Atoi(m[4])
		if size != np || sum != np*(np-1)/2 || r < 0 || r >= np {
			t.Errorf("bad line %q: want size %d and sum %d", line, np, np*(np-1)/2)
			continue
		}
		nodes[r] = node
		seen++
	}
	if seen != np {
		t.Fatalf("%d rank lines, want %d:\n%s", seen, np, out)
	}
	return nodes
}

func formatMap(m []int) string {
	s := make([]string, len(m))
	for i, n := range m {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ":")
}

// TestMPIStockLaunchers: the stock mpirun of OpenMPI and MPICH, as a
// user (nobody) with the one line of env.sh and no hostfile, run hello
// with an allreduce across the nodes; ranks land as the default hostfile
// says (rank 0 on the master, then the nodes); a map of the user's own
// through `beomap --hostfile` is followed rank for rank.
func TestMPIStockLaunchers(t *testing.T) {
	c := startWith(t, sim.Options{Nodes: 3}, 3)
	who := mpiUser(t, c)
	dir := progDir(t, c)
	hello := build(t, dir, "hello", helloC)
	views := os.Getuid() == 0 // each node runs in its own view: hello can tell where it ran
	env := userEnv(c)
	for _, l := range launchers {
		t.Run(l.name+" default hostfile", func(t *testing.T) {
			r := runUser(t, who, dir, env, 90*time.Second, l.run, l.np, "4", hello[l.name])
			if r.code != 0 {
				t.Fatalf("%s: exit %d\nstdout %s\nstderr %s", l.run, r.code, r.out, r.err)
			}
			got := placement(t, r.out, 4)
			// No stats in this simulation: every node is one idle CPU.
			if want := "-1:0:1:2"; views && formatMap(got) != want {
				t.Errorf("placement %s, want %s", formatMap(got), want)
			}
		})
		t.Run(l.name+" default hostfile, more ranks than CPUs", func(t *testing.T) {
			// 4 CPUs (the master's slot, one per node): placed anyway,
			// as beomap oversubscribes when it must.
			r := runUser(t, who, dir, env, 90*time.Second, l.run, l.np, "7", hello[l.name])
			if r.code != 0 {
				t.Fatalf("%s %s 7: exit %d\nstdout %s\nstderr %s", l.run, l.np, r.code, r.out, r.err)
			}
			placement(t, r.out, 7)
		})
		t.Run(l.name+" beomap hostfile", func(t *testing.T) {
			m := runUser(t, who, dir, env, 30*time.Second, "beomap", "--np", "5", "--no-local")
			hf := runUser(t, who, dir, env, 30*time.Second, "beomap", "--np", "5", "--no-local", "--hostfile", l.name)
			if m.code != 0 || hf.code != 0 {
				t.Fatalf("beomap: %+v %+v", m, hf)
			}
			file := filepath.Join(dir, "hosts-"+l.name)
			if err := os.WriteFile(file, []byte(hf.out), 0o644); err != nil {
				t.Fatal(err)
			}
			r := runUser(t, who, dir, env, 90*time.Second, l.run, l.hostfile, file, l.np, "5", hello[l.name])
			if r.code != 0 {
				t.Fatalf("%s: exit %d\nstdout %s\nstderr %s", l.run, r.code, r.out, r.err)
			}
			got := placement(t, r.out, 5)
			if want := strings.TrimSpace(m.out); views && formatMap(got) != want {
				t.Errorf("placement %s, want beomap's %s (hostfile %q)", formatMap(got), want, hf.out)
			}
		})
		t.Run(l.name+" host not a node", func(t *testing.T) {
			file := filepath.Join(dir, "bad-"+l.name)
			text := "n0 slots=1\nbogus slots=1\n"
			if l.name == "mpich" {
				text = "n0:1\nbogus:1\n"
			}
			os.WriteFile(file, []byte(text), 0o644)
			r := runUser(t, who, dir, env, 60*time.Second, l.run, l.hostfile, file, l.np, "2", hello[l.name])
			if r.code == 0 || !strings.Contains(r.err, "beorsh: bogus: not a node of this cluster") {
				t.Errorf("got exit %d, stderr %q; want a failure naming bogus", r.code, r.err)
			}
		})
	}
}

// spawnC spawns two copies of itself with MPI_Comm_spawn; the first
// sends the parents 42 over the intercommunicator.
const spawnC = `#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
	MPI_Comm parent, child;
	int rank, v = 0;
	MPI_Init(&argc, &argv);
	MPI_Comm_get_parent(&parent);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	if (parent == MPI_COMM_NULL) {
		MPI_Comm_spawn(argv[0], MPI_ARGV_NULL, 2, MPI_INFO_NULL, 0, MPI_COMM_WORLD, &child, MPI_ERRCODES_IGNORE);
		if (rank == 0) {
			MPI_Recv(&v, 1, MPI_INT, 0, 7, child, MPI_STATUS_IGNORE);
			printf("parent got %d\n", v);
		}
		MPI_Comm_disconnect(&child);
	} else {
		if (rank == 0) { v = 42; MPI_Send(&v, 1, MPI_INT, 0, 7, parent); }
		MPI_Comm_disconnect(&parent);
	}
	MPI_Finalize();
	return 0;
}
`

// TestMPISpawn: a program that calls MPI_Comm_spawn runs with the stock
// OpenMPI mpirun through beorsh given `--mca orte_no_vm 0`, as the README
// says (with beo's default orte_no_vm = 1, OpenMPI 4.1's mpirun crashes
// when the spawned processes need a node without a daemon).
func TestMPISpawn(t *testing.T) {
	if _, err := exec.LookPath("mpicc.openmpi"); err != nil {
		t.Skipf("mpicc.openmpi not installed (Debian: libopenmpi-dev): %v", err)
	}
	c := startWith(t, sim.Options{Nodes: 2}, 2)
	who := mpiUser(t, c)
	dir := progDir(t, c)
	src, bin := filepath.Join(dir, "spawn.c"), filepath.Join(dir, "spawn")
	if err := os.WriteFile(src, []byte(spawnC), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("mpicc.openmpi", "-O", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("mpicc.openmpi: %v\n%s", err, b)
	}
	r := runUser(t, who, dir, userEnv(c), 90*time.Second, "mpirun.openmpi", "--mca", "orte_no_vm", "0", "-np", "2", bin)
	if r.code != 0 || !strings.Contains(r.out, "parent got 42") {
		t.Errorf("mpirun --mca orte_no_vm 0 -np 2 spawn: exit %d\nstdout %s\nstderr %s", r.code, r.out, r.err)
	}
}

// TestMPINodeCrash: a node that dies mid-job ends the job with a
// non-zero status naming the node, and no daemon or rank of the job is
// left running anywhere.
func TestMPINodeCrash(t *testing.T) {
	c := startWith(t, sim.Options{Nodes: 3}, 3)
	who := mpiUser(t, c)
	dir := progDir(t, c)
	ring := build(t, dir, "ring", ringC)
	for _, l := range launchers {
		t.Run(l.name, func(t *testing.T) {
			waitState(t, c, 1, "up", 30*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, l.run, l.np, "4", ring[l.name])
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: who}
			cmd.Dir, cmd.Env = dir, userEnv(c)
			var out, errb lockedBuffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "ready", 60*time.Second, func() bool { return strings.Contains(out.String(), "ready") })
			start := time.Now()
			if err := c.Crash(1); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			took := time.Since(start)
			if ctx.Err() != nil {
				t.Fatalf("%s still running %s after node 1 crashed: stderr %s", l.run, took, errb.String())
			}
			switch {
			case err == nil:
				t.Errorf("%s after node 1 crashed: exit 0, stderr %q; want a failure", l.run, errb.String())
			case !strings.Contains(errb.String(), ": node 1: ") && l.name == "openmpi":
				t.Errorf("%s after node 1 crashed: %v, stderr %q; want a failure naming node 1", l.run, err, errb.String())
			case !strings.Contains(errb.String(), ": node 1: "):
				// hydra may report its own broken proxy connection first and
				// exit before beorsh's line about the node is read.
				t.Logf("%s did not name node 1: %q", l.run, errb.String())
			}
			t.Logf("%s ended %s after the crash: %v", l.run, took.Round(time.Millisecond), err)
			var left []string
			deadline := time.Now().Add(30 * time.Second) // a loaded machine (make check) is slow to reap
			for left = running(ring[l.name], "orted", "hydra_pmi_proxy"); len(left) > 0 && time.Now().Before(deadline); left = running(ring[l.name], "orted", "hydra_pmi_proxy") {
				time.Sleep(50 * time.Millisecond)
			}
			if len(left) > 0 {
				t.Errorf("left running 30 s after the crash:\n%s", strings.Join(left, "\n"))
			}
		})
	}
}

// running lists the processes running exe (by path) or named like one of
// names, as "pid cmdline".
func running(exe string, names ...string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		hit := filepath.Base(args[0]) == filepath.Base(exe) && strings.HasSuffix(args[0], filepath.Base(exe))
		for _, n := range names {
			hit = hit || filepath.Base(args[0]) == n
		}
		if hit {
			out = append(out, e.Name()+" "+strings.Join(args, " "))
		}
	}
	return out
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// sendStats sends node n's stats as its sendstats would, from its
// address: cpus CPUs and a load average of load.
func sendStats(t *testing.T, c *sim.Cluster, n, cpus int, load float64) {
	t.Helper()
	s := stats.Sample{Claim: n, Seq: uint64(time.Now().UnixNano()), IntervalMS: 3600_000, UptimeMS: 1000,
		Load1: uint64(load * 100), MemTotal: 1 << 30, CPUs: make([]stats.CPU, cpus)}
	b, err := s.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	to, err := netip.ParseAddrPort(c.Stats)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp4", &net.UDPAddr{IP: sim.NodeAddr(n).AsSlice()}, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestBeomapChoices: the map follows the nodes' states, the caller's
// permissions, the load and CPUs in the stats, exclusions and explicit
// maps, options over variables.
func TestBeomapChoices(t *testing.T) {
	c := startWith(t, sim.Options{Nodes: 4, Stats: true, StatsInterval: time.Hour}, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitStats(ctx, 4); err != nil { // the nodes' own first samples
		t.Fatal(err)
	}
	load := []struct {
		cpus int
		load float64
	}{{2, 1.8}, {4, 0.2}, {1, 0}, {2, 0}}
	for n, l := range load {
		sendStats(t, c, n, l.cpus, l.load)
	}
	waitFor(t, "the test's stats", 10*time.Second, func() bool {
		snap, err := dashboard.Fetch(ctx, nil, c.StatsURL, "")
		if err != nil {
			return false
		}
		ok := 0
		for _, nd := range snap.Nodes {
			if nd.Stats != nil && nd.Node < len(load) && len(nd.Stats.Report.Cores) == load[nd.Node].cpus && nd.Stats.Report.Load[0] == load[nd.Node].load {
				ok++
			}
		}
		return ok == len(load)
	})
	who := mpiUser(t, c)
	env := userEnv(c)
	beomap := func(extra []string, args ...string) result {
		t.Helper()
		return runUser(t, who, "/", append(env[:len(env):len(env)], extra...), 30*time.Second, append([]string{"beomap"}, args...)...)
	}
	// Scores (load + placed) / CPUs: node 2 and 3 idle, 1 nearly, 0 busy.
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"least loaded CPUs first", nil, []string{"--np", "6"}, "-1:2:3:3:1:1"},
		{"NP and NO_LOCAL", []string{"NP=2", "NO_LOCAL=1"}, nil, "2:3"},
		{"EXCLUDE", []string{"EXCLUDE=2", "NP=3"}, nil, "-1:3:1"},
		{"--exclude beats EXCLUDE", []string{"EXCLUDE=2"}, []string{"--exclude", "1:3", "--np", "3"}, "-1:2:0"},
		{"BEOWULF_JOB_MAP", []string{"BEOWULF_JOB_MAP=0:0:-1"}, nil, "0:0:-1"},
		{"--np beats BEOWULF_JOB_MAP", []string{"BEOWULF_JOB_MAP=0:0:-1"}, []string{"--np", "2"}, "-1:2"},
		{"ALL_CPUS", []string{"ALL_CPUS=1", "NO_LOCAL=1"}, nil, "0:0:1:1:1:1:2:3:3"},
		{"--all-nodes", nil, []string{"--all-nodes"}, "-1:0:1:2:3"},
		{"--all-local", []string{"NP=3"}, []string{"--all-local"}, "-1:-1:-1"},
		// Beyond the 9 CPUs: node 0's are nearly all busy already.
		{"oversubscribe when it must", []string{"NO_LOCAL=1"}, []string{"--np", "10"}, "2:2:3:3:3:1:1:1:1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := beomap(tc.env, tc.args...)
			if r.code != 0 || strings.TrimSpace(r.out) != tc.want {
				t.Errorf("beomap %v with %v: got %+v, want %s", tc.args, tc.env, r, tc.want)
			}
		})
	}
	if r := beomap([]string{"NO_OVER=1"}, "--np", "10", "--no-local"); r.code == 0 || !strings.Contains(r.err, "NO_OVER: 10 processes to place on 4 usable nodes with 9 CPUs") {
		t.Errorf("NO_OVER: got %+v, want a refusal", r)
	}
	if r := beomap([]string{"NO_OVER=1"}, "--map", "1:0:0:0"); r.code == 0 || !strings.Contains(r.err, "NO_OVER: the job map puts 3 processes on node 0, which has 2 CPUs") {
		t.Errorf("NO_OVER and a map: got %+v, want a refusal", r)
	}
	if r := beomap([]string{"NO_OVER=1"}, "--map", "0:0:1"); r.code != 0 || strings.TrimSpace(r.out) != "0:0:1" {
		t.Errorf("NO_OVER and a map that fits: got %+v", r)
	}
	if r := beomap([]string{"BEOWULF_JOB_MAP=0:9"}); r.code == 0 || !strings.Contains(r.err, "node 9: no such node") {
		t.Errorf("a map with no such node: got %+v", r)
	}
	// States: an unavailable node is nobody's to map, not even root's.
	if r := run(t, c, nil, "bpctl", "-S", "3", "-s", "unavailable"); r.code != 0 {
		t.Fatalf("bpctl: %+v", r)
	}
	if r := beomap(nil, "--all-nodes", "--no-local"); strings.TrimSpace(r.out) != "0:1:2" {
		t.Errorf("node 3 unavailable: got %+v, want 0:1:2", r)
	}
	if r := beomap([]string{"BEOWULF_JOB_MAP=3"}); r.code == 0 || !strings.Contains(r.err, "node 3: not up (unavailable)") {
		t.Errorf("a map naming an unavailable node: got %+v", r)
	}
	if who == nil {
		return // permissions need another user
	}
	// Permissions: node 2 for its owner (root) only.
	if r := run(t, c, nil, "bpctl", "-S", "2", "-m", "0100"); r.code != 0 {
		t.Fatalf("bpctl: %+v", r)
	}
	if r := beomap(nil, "--np", "3", "--no-local"); strings.TrimSpace(r.out) != "1:1:1" {
		t.Errorf("node 2 shut to nobody (3 unavailable): got %+v, want 1:1:1", r)
	}
	if r := runUser(t, nil, "/", env, 30*time.Second, "beomap", "--all-nodes", "--no-local"); strings.TrimSpace(r.out) != "0:1:2" {
		t.Errorf("root may use node 2: got %+v, want 0:1:2", r)
	}
}

// TestBeorunMpprun: every entry of the map at once, or one after
// another; rank variables, exit statuses, prefixes and gathered output.
func TestBeorunMpprun(t *testing.T) {
	c := start(t, 3)
	env := userEnv(c)
	do := func(extra []string, argv ...string) result {
		t.Helper()
		return runUser(t, nil, "/", append(env[:len(env):len(env)], extra...), 60*time.Second, argv...)
	}
	r := do(nil, "beorun", "--np", "4", "-p", "sh", "-c", "echo $BPROC_RANK $BPROC_PROGNAME")
	lines := strings.Split(strings.TrimRight(r.out, "\n"), "\n")
	sort.Strings(lines)
	if want := "  0: 1 sh\n  1: 2 sh\n  2: 3 sh\n -1: 0 sh"; r.code != 0 || strings.Join(lines, "\n") != want {
		t.Errorf("beorun -p: got %+v, want %q", r, want)
	}
	if r := do([]string{"NP=3", "NO_LOCAL=1"}, "beorun", "sh", "-c", "exit $BPROC_RANK"); r.code != 2 {
		t.Errorf("beorun status: got %+v, want the highest, 2", r)
	}
	if r := do(nil, "beorun", "--map", "1", "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("beorun, one process: got %+v, want its status 7", r)
	}
	if r := do(nil, "beorun", "--map", "0:1", "sh", "-c", "kill -9 $$"); r.code != 255 || !strings.Contains(r.err, "rank 0 (node 0): killed by signal 9") {
		t.Errorf("beorun, killed: got %+v, want 255 naming the ranks and nodes", r)
	}
	if r := do(nil, "beorun", "--map", "0:2:1", "-g", "sh", "-c", `[ $BPROC_RANK = 2 ] && echo odd || echo same`); r.out != "----------------\n0,2 (2)\n----------------\nsame\n----------------\n1 (1)\n----------------\nodd\n" {
		t.Errorf("beorun -g: got %q", r.out)
	}
	if r := do(nil, "bpsh", "-g", "-a", "sh", "-c", "echo same; echo err$BPROC_RANK >&2"); r.out != "----------------\n0-2 (3)\n----------------\nsame\n" ||
		r.err != "----------------\n0 (1)\n----------------\nerr0\n----------------\n1 (1)\n----------------\nerr1\n----------------\n2 (1)\n----------------\nerr2\n" {
		t.Errorf("bpsh -g: got %+v", r)
	}
	// mpprun: one after another, in rank order.
	r = do(nil, "mpprun", "--map", "2:0:1", "sh", "-c", "echo start $BPROC_RANK; sleep 0.2; echo end $BPROC_RANK")
	if want := "start 0\nend 0\nstart 1\nend 1\nstart 2\nend 2\n"; r.code != 0 || r.out != want {
		t.Errorf("mpprun: got %+v, want %q", r, want)
	}
	if r := do(nil, "mpprun", "--map", "0:1", "sh", "-c", "exit $((BPROC_RANK+4))"); r.code != 5 {
		t.Errorf("mpprun status: got %+v, want 5", r)
	}
	// At once vs one after another: 4 × sleep 1.
	at := time.Now()
	do(nil, "beorun", "--np", "4", "sleep", "1")
	together := time.Since(at)
	at = time.Now()
	do(nil, "mpprun", "--np", "4", "sleep", "1")
	apart := time.Since(at)
	if together > 3*time.Second || apart < 4*time.Second {
		t.Errorf("beorun --np 4 sleep 1 took %s (want ~1 s), mpprun %s (want ~4 s)", together, apart)
	}
	t.Logf("beorun --np 4 sleep 1: %s; mpprun: %s", together.Round(time.Millisecond), apart.Round(time.Millisecond))
}

// TestBeorshNames: every name beonss gives a node reaches it; rsh's
// command line, stdin and status; a name that is no node fails with 255.
func TestBeorshNames(t *testing.T) {
	c := start(t, 3)
	env := userEnv(c)
	for _, host := range []string{"2", ".2", "n2", sim.NodeAddr(2).String()} {
		r := runUser(t, nil, "/", env, 30*time.Second, "beorsh", host, "echo", "$((1+1))", ";", "exit", "4")
		if r.out != "2\n" || r.code != 4 {
			t.Errorf("beorsh %s: got %+v, want the words run by sh and status 4", host, r)
		}
	}
	for _, host := range []string{"master", ".-1", "localhost"} {
		if r := runUser(t, nil, "/", env, 30*time.Second, "beorsh", host, "echo here"); r.out != "here\n" || r.code != 0 {
			t.Errorf("beorsh %s: got %+v, want a local run", host, r)
		}
	}
	cmd := exec.Command("beorsh", "-n", "n1", "cat")
	cmd.Env, cmd.Stdin = env, strings.NewReader("not read\n")
	if out, err := cmd.Output(); err != nil || len(out) != 0 {
		t.Errorf("beorsh -n: %q %v, want nothing read", out, err)
	}
	cmd = exec.Command("beorsh", "n1", "tr", "a-z", "A-Z")
	cmd.Env, cmd.Stdin = env, strings.NewReader("stdin\n")
	if out, err := cmd.Output(); err != nil || string(out) != "STDIN\n" {
		t.Errorf("beorsh stdin: %q %v", out, err)
	}
	for _, host := range []string{"n7", "bogus.example", "10.200.0.1"} {
		r := runUser(t, nil, "/", env, 30*time.Second, "beorsh", host, "true")
		if r.code != 255 || !strings.HasPrefix(r.err, "beorsh: "+host+": ") {
			t.Errorf("beorsh %s: got %+v, want 255 and the host named", host, r)
		}
	}
	if r := runUser(t, nil, "/", env, 30*time.Second, "beorsh", "someoneelse@n1", "true"); r.code != 255 || !strings.Contains(r.err, "cannot run as someoneelse") {
		t.Errorf("another user: got %+v", r)
	}
}

// TestBeorshEndsWithItsLauncher: a launcher that exits leaves no beorsh
// and no remote command behind, even one that ignores SIGTERM: beorsh
// gives the command its grace, passes TERM on, and leaves; its leaving
// hangs the command up.
func TestBeorshEndsWithItsLauncher(t *testing.T) {
	c := start(t, 2)
	secs := strconv.Itoa(3000 + os.Getpid()%1000) // names this test's remote sleep
	launcher := exec.Command("sh", "-c", `beorsh n1 "trap '' TERM; exec sleep `+secs+`" & sleep 1`)
	launcher.Env = userEnv(c) // its output: /dev/null, which beorsh keeps open
	if err := launcher.Run(); err != nil {
		t.Fatalf("launcher: %v", err)
	}
	left := func() []string {
		var l []string
		for _, p := range running(beoBin, "beorsh", "sleep") {
			if strings.Contains(p, "beorsh n1") || strings.HasSuffix(p, "sleep "+secs) {
				l = append(l, p)
			}
		}
		return l
	}
	if len(left()) == 0 {
		t.Fatal("neither beorsh nor its command seen running after the launcher left")
	}
	// orphanGrace + stopGrace is 8 s; the node's hang-up grace follows.
	waitFor(t, "beorsh and its command gone after their launcher", 30*time.Second, func() bool { return len(left()) == 0 })
}

// TestBeorshBornOrphan: a beorsh whose launcher is gone before it starts
// (init's child from the start, as when hydra ends within milliseconds
// of another host's failed launch) runs only as long as someone reads
// its output: once the launcher's pipe has no reader, it and its
// command end.
func TestBeorshBornOrphan(t *testing.T) {
	c := start(t, 2)
	secs := strconv.Itoa(4000 + os.Getpid()%1000)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	launcher := exec.Command("sh", "-c", `beorsh n1 "exec sleep `+secs+`" &`)
	launcher.Env, launcher.Stdout = userEnv(c), w
	err = launcher.Run()
	w.Close()
	if err != nil {
		t.Fatalf("launcher: %v", err)
	}
	left := func() []string {
		var l []string
		for _, p := range running(beoBin, "beorsh", "sleep") {
			if strings.Contains(p, "beorsh n1") || strings.HasSuffix(p, "sleep "+secs) {
				l = append(l, p)
			}
		}
		return l
	}
	waitFor(t, "the remote command started", 30*time.Second, func() bool {
		for _, p := range left() {
			if !strings.Contains(p, "beorsh") {
				return true
			}
		}
		return false
	})
	r.Close() // the launcher's end of the pipe: nobody reads beorsh any more
	waitFor(t, "beorsh and its command gone after their reader", 30*time.Second, func() bool { return len(left()) == 0 })
}
