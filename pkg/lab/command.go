package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Command returns a command that runs argv inside the lab's namespace
// (through `ip netns exec`, which execs argv, so the pid is argv's own).
// It is how a test or an admin reaches what listens only there, such as
// the master's beostatus dashboard on the namespace's 127.0.0.1:5546.
// Unlike Start, the caller runs and waits for the command; it is not
// stopped by Close. It gets SIGKILL when its starter's thread dies, like
// the lab's own processes.
func (l *Lab) Command(ctx context.Context, argv ...string) *exec.Cmd {
	return nsCommand(ctx, l.NS, argv)
}

// Output runs argv in the namespace (see Command) and returns its stdout;
// a failure's error carries the exit status and stderr.
func (l *Lab) Output(ctx context.Context, argv ...string) (string, error) {
	return nsOutput(ctx, l.NS, argv)
}

// Output is Lab.Output in the peer's namespace: what listens only there,
// such as a second master's dashboard.
func (p *Peer) Output(ctx context.Context, argv ...string) (string, error) {
	return nsOutput(ctx, p.NS, argv)
}

func nsCommand(ctx context.Context, ns string, argv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func nsOutput(ctx context.Context, ns string, argv []string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("empty command")
	}
	var stdout, stderr bytes.Buffer
	cmd := nsCommand(ctx, ns, argv)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s (in %s): %w: %s", strings.Join(argv, " "), ns, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
