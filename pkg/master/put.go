package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/beo-cluster/beo/pkg/xfer"
)

var errPutCancelled = errors.New("put cancelled by the client")

// putSources carries out a client's OpPut with File.Sources: the master
// packs the sources itself (pkg/xfer) and sends the node an ordinary
// OpPut, so the bytes go file → master → node instead of file → bpcp →
// unix socket → master → node: one process and one copy fewer per byte,
// which is most of what a large bpcp cost the master.
//
// Every file is stat'ed, opened and read inside creds.Do with the
// caller's filesystem identity, so the kernel's permission checks decide
// exactly as at the caller's shell, and errors name the file as the
// client gave it ("/x: permission denied"). The paths must be absolute
// and clean (the caller's working directory means nothing here), and the
// caller must see the master's filesystem: the same mount namespace and
// root directory (a client in a container, or a service with a private
// /tmp, would name other files). Otherwise, or when this master cannot
// take the caller's identity (not running as root, serving another
// user), the answer is wire.SourcesRefused and the client sends the
// stream itself.
//
// The sources are checked (xfer.Scan) before the node hears of the copy.
// A failure while streaming (a file vanishing, turning unreadable,
// shrinking) ends the node's stream without the end-of-archive marker,
// so the node lands nothing; the client gets the master's error, the
// cause, not the node's "archive truncated". The client closing its side
// of cl before the answer cancels the copy the same way.
func (m *Master) putSources(ctx context.Context, who caller, cl net.Conn, f wire.File) error {
	srcs := f.Sources
	f.Sources = nil // the node gets an ordinary put
	for _, p := range srcs {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return wire.Errorf(wire.CodeInvalid, "%s: not an absolute, clean path", p)
		}
	}
	if !mayReadAs(who) {
		return wire.Errorf(wire.CodeRefused, "%s", wire.SourcesRefused)
	}
	s, err := m.session(f.Node)
	if err != nil {
		return err
	}
	f.Cred = who.cred
	opts := xfer.Options{Recursive: f.Recursive, Preserve: f.Preserve}

	// The client sends nothing more; its side ending (a close, or its
	// connection going away) cancels.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		var b [1]byte
		cl.Read(b[:])
		cancel()
	}()
	defer cl.SetReadDeadline(time.Unix(1, 0)) // ends that read

	var plan *xfer.Plan
	if err := m.asUser.do(ctx, f.Cred, func() (err error) {
		plan, err = xfer.Scan(srcs, opts)
		return err
	}); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return errPutCancelled
	}
	nd, err := s.open(wire.Header{Op: wire.OpPut, File: &f})
	if err != nil {
		return err
	}
	defer nd.Close()
	// The node may answer before the end (a refused path): its Result is
	// read while the archive is written, and that answer, like the
	// client's cancellation, stops the writing.
	var nodeErr error
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		var r wire.Result
		if err := wire.Read(nd, &r); err != nil {
			nodeErr = s.downErr("put "+f.Path, err)
		} else {
			nodeErr = r.Failure()
		}
	}()
	stop := make(chan struct{}) // the client cancelled or the node answered
	written := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-answered:
		case <-written:
			return
		}
		close(stop)
		nd.SetWriteDeadline(time.Unix(1, 0)) // a write waiting for the node's window
	}()
	out := &sink{w: nd, stop: stop}
	werr := m.asUser.do(ctx, f.Cred, func() error { return plan.Write(out) })
	close(written)
	nd.Close() // half-close; short of the end marker when werr != nil
	select {
	case <-answered:
	case <-ctx.Done():
		nd.SetReadDeadline(time.Unix(1, 0))
		return errPutCancelled
	}
	switch {
	case ctx.Err() != nil:
		return errPutCancelled
	case werr != nil && out.err == nil:
		return werr // a source failed: the node only saw a short archive
	case nodeErr != nil:
		return nodeErr
	case werr != nil:
		return wire.NodeErrorf(f.Node, "", "put %s: %w", f.Path, werr)
	}
	return nil
}

// sink writes to the node until stop is closed, and remembers the first
// error writing there, to tell it from a failure reading a source. (A
// write deadline alone would not stop a copy the node keeps up with: a
// yamux write only looks at it while waiting for window.)
type sink struct {
	w    io.Writer
	stop <-chan struct{}
	err  error
}

var errStopped = errors.New("stopped")

func (s *sink) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	select {
	case <-s.stop:
		s.err = errStopped
		return 0, s.err
	default:
	}
	n, err := s.w.Write(p)
	if err != nil {
		s.err = err
	}
	return n, err
}

// mayReadAs reports whether the master can read files exactly as the
// caller would: it can take the caller's filesystem identity (creds.Do),
// and the caller shares its mount namespace and root directory.
func mayReadAs(who caller) bool {
	if who.remote {
		return false // its files are the node's
	}
	if euid := os.Geteuid(); euid != 0 && uint32(euid) != who.cred.UID {
		return false
	}
	proc := fmt.Sprintf("/proc/%d/", who.pid)
	theirs, err1 := os.Readlink(proc + "ns/mnt")
	ours, err2 := os.Readlink("/proc/self/ns/mnt")
	root, err3 := os.Readlink(proc + "root")
	return err1 == nil && err2 == nil && err3 == nil && theirs == ours && root == "/"
}
