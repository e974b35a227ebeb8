package localfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"syscall"

	"github.com/beo-cluster/beo/pkg/bproc"
)

// Remote is a Node on the process space: a program of the master's runs
// on node Node through Client (as bpsh runs it), args[0] Self standing
// for the master's beo binary, SelfPath. beofdisk uses it with its own
// client; the master with its in-process one, while a node boots.
type Remote struct {
	Client   *bproc.Client
	Node     int
	SelfPath string
	Stdin    io.Reader // the program's stdin; nil: none
}

// Run runs args on the node from its root directory and waits; stdout
// and stderr together are out.
func (x *Remote) Run(ctx context.Context, args ...string) (int, []byte, error) {
	name := args[0]
	if name == Self {
		name = x.SelfPath
	}
	cmd := x.Client.Command(x.Node, name, args[1:]...)
	cmd.Dir = "/"
	cmd.Stdin = x.Stdin
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Start()
	if err == nil {
		done := make(chan struct{})
		go func() {
			select {
			case <-ctx.Done():
				cmd.Signal(syscall.SIGKILL)
			case <-done:
			}
		}()
		err = cmd.Wait()
		close(done)
	}
	var ee *bproc.ExitError
	if errors.As(err, &ee) && ee.Signal == 0 {
		return ee.Status, out.bytes(), nil
	}
	return 0, out.bytes(), err
}

// lockedBuffer collects stdout and stderr, which come on two streams.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}
