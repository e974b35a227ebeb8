package slave

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/beo-cluster/beo/pkg/wire"
)

// TestSpawnImage: the committed small trampoline is what its source
// assembles to (skipped without GNU as and objcopy).
func TestSpawnImage(t *testing.T) {
	for _, tool := range []string{"as", "objcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	dir := t.TempDir()
	if out, err := exec.Command("as", "--64", "-o", filepath.Join(dir, "s.o"), "spawn_amd64.asm").CombinedOutput(); err != nil {
		t.Fatalf("as: %v\n%s", err, out)
	}
	if out, err := exec.Command("objcopy", "-O", "binary", "-j", ".text", filepath.Join(dir, "s.o"), filepath.Join(dir, "s.bin")).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "s.bin"))
	if !bytes.Equal(b, spawnImage) {
		t.Errorf("spawn_image_amd64.go (%d bytes) is not what spawn_amd64.asm assembles to (%d bytes): run go generate ./pkg/slave", len(spawnImage), len(b))
	}
}

// smallRun starts sh -c script through the small trampoline and returns
// its output.
func smallRun(t *testing.T, s *smallSpawner, cred wire.Cred, rl []wire.Rlimit, switchID bool, prog string, argv ...string) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	null, _ := os.Open(os.DevNull)
	defer null.Close()
	p, err := s.spawn(prog, argv, []string{"PATH=/usr/bin:/bin", "X=1"}, cred, rl, switchID, &os.ProcAttr{Dir: "/", Files: []*os.File{null, w, w}})
	w.Close()
	if err != nil {
		return "", err
	}
	out, _ := io.ReadAll(r)
	p.Wait()
	return string(out), nil
}

// TestSmallSpawn: limits (a hard one above what the slave may grant
// clamped), identity, a clean signal state and exactly the environment;
// a program that cannot run is an error naming why.
func TestSmallSpawn(t *testing.T) {
	var s smallSpawner
	if _, err := s.program(); err != nil {
		t.Skip(err)
	}
	var nofile syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
	rl := []wire.Rlimit{
		{Resource: syscall.RLIMIT_NOFILE, Cur: 321, Max: nofile.Max + 1000}, // clamped to what we have
		{Resource: syscall.RLIMIT_CORE, Cur: 0, Max: 0},
	}
	cred, switchID := wire.Cred{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}, false
	want := strings.Join([]string{"321", "0", strings.TrimSpace(run(t, "id", "-u"))}, "\n")
	if os.Geteuid() == 0 {
		cred, switchID = wire.Cred{UID: 65534, GID: 65534, Groups: []uint32{65534, 100}}, true
		want = "321\n0\n65534"
	}
	script := "ulimit -n; ulimit -c; id -u; id -g; id -G; echo $X; grep -E '^Sig(Ign|Blk)' /proc/self/status"
	out, err := smallRun(t, &s, cred, rl, switchID, "/bin/sh", "sh", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 8 || strings.Join(lines[:3], "\n") != want || lines[5] != "1" ||
		!strings.Contains(out, "SigIgn:\t0000000000000000\n") || !strings.Contains(out, "SigBlk:\t0000000000000000\n") {
		t.Errorf("got\n%s\nwant limits, uid %q, X=1 and no signal ignored or blocked", out, want)
	}
	if switchID && (lines[3] != "65534" || lines[4] != "65534 100") {
		t.Errorf("groups: got gid %q, groups %q; want 65534 and 65534 100", lines[3], lines[4])
	}
	if _, err := smallRun(t, &s, cred, rl, switchID, "/nonexistent/prog", "prog"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("a missing program: got %v, want no such file or directory", err)
	}
	bad := []wire.Rlimit{{Resource: 99, Cur: 1, Max: 1}}
	if _, err := smallRun(t, &s, cred, bad, switchID, "/bin/true", "true"); err == nil || !strings.Contains(err.Error(), "rlimit") {
		t.Errorf("a bad resource: got %v, want an rlimit error", err)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
