package lab

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/config"
)

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == EnterArg0 { // the test binary as the helper
		Enter()
	}
	os.Exit(m.Run())
}

// TestUserCommand: a user's command runs in the lab's namespace (it sees
// the bridge), as that user, with the cluster's names; the host's
// /etc/hosts is untouched.
func TestUserCommand(t *testing.T) {
	if err := Check(false); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	l, err := New(ctx, Options{Dir: dir, Grace: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hosts, err := HostsFile(dir, config.Default(), l.Addr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	script := "id -u; getent hosts n3 .-1; cat /sys/class/net/" + l.Bridge + "/address; pwd"
	cmd := l.UserCommand(ctx, exe, hosts, User{UID: 65534, GID: 65534, Set: true}, "/", []string{"PATH=/usr/bin:/bin"}, []string{"sh", "-c", script})
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := "65534\n10.99.0.103     n3 .3\n10.99.0.1       master .-1\n" + bridgeMAC.String() + "\n/\n"
	if got := strings.Join(strings.Fields(string(out)), " "); got != strings.Join(strings.Fields(want), " ") {
		t.Errorf("got %q, want %q", out, want)
	}
	if b, _ := os.ReadFile("/etc/hosts"); strings.Contains(string(b), " n3 ") {
		t.Errorf("the host's /etc/hosts got the lab's names:\n%s", b)
	}
	// A missing program is the helper's error, status 127.
	cmd = l.UserCommand(ctx, exe, "", User{}, "", nil, []string{"/no/such/program"})
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 127 || !strings.Contains(string(out), "/no/such/program") {
		t.Errorf("a missing program: %v %q, want status 127 naming it", cmd.ProcessState, out)
	}
}
