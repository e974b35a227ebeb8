package bproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// Put writes a tar stream to f.Path on node f.Node. Each file lands whole
// or not at all (the slave writes a temp file and renames it).
func (c *Client) Put(ctx context.Context, f File, tarStream io.Reader) error {
	f.Sources = nil // Put sends the stream itself
	st, err := c.open(ctx, wire.Header{Op: wire.OpPut, File: f.wire()})
	if err != nil {
		return err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// The slave may refuse early (bad path): read its Result while sending.
	res := make(chan error, 1)
	go func() {
		var r wire.Result
		if err := wire.Read(st, &r); err != nil {
			res <- onNode(f.Node, fmt.Errorf("put %s: %w", f.Path, err))
			return
		}
		res <- remoteOn(f.Node, r)
	}()
	_, cerr := io.CopyBuffer(struct{ io.Writer }{st}, struct{ io.Reader }{tarStream}, make([]byte, 1<<20))
	if cerr == nil {
		cerr = st.Close() // yamux Close is a half-close: the Result still arrives
	}
	if err := <-res; err != nil {
		return err
	}
	if cerr != nil {
		return onNode(f.Node, fmt.Errorf("put %s: %w", f.Path, cerr))
	}
	return nil
}

// ErrSourcesRefused is PutFiles' answer when the master will not read the
// sources for this caller (see wire.SourcesRefused): send them with Put.
var ErrSourcesRefused = errors.New(wire.SourcesRefused)

// PutFiles copies the local files f.Sources (absolute, clean paths) to
// f.Path on node f.Node, as Put would, except that the master reads them
// itself as the calling user: the file's bytes never pass through this
// process and the master's socket. The kernel checks the caller's
// permissions on the master exactly as it would here, and errors name the
// file as given ("/x: permission denied"). Cancelling ctx ends the copy on
// the master too, and the node keeps its old files.
func (c *Client) PutFiles(ctx context.Context, f File) error {
	if len(f.Sources) == 0 {
		return errors.New("PutFiles: no sources")
	}
	st, err := c.open(ctx, wire.Header{Op: wire.OpPut, File: f.wire()})
	if err != nil {
		return err
	}
	// Our side stays open while the master works: closing it (here or
	// on cancellation) tells the master to stop.
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Close(); st.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var r wire.Result
	if err := wire.Read(st, &r); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return onNode(f.Node, fmt.Errorf("put %s: %w", f.Path, err))
	}
	if r.Code == wire.CodeRefused {
		return ErrSourcesRefused
	}
	return remote(r) // the master's own errors name the file, not the node
}

// Get returns a tar stream of f.Path on node f.Node. The caller closes it.
func (c *Client) Get(ctx context.Context, f File) (io.ReadCloser, error) {
	f.Sources = nil
	st, err := c.open(ctx, wire.Header{Op: wire.OpGet, File: f.wire()})
	if err != nil {
		return nil, err
	}
	var r wire.Result
	if err := wire.Read(st, &r); err != nil {
		st.Close()
		return nil, onNode(f.Node, fmt.Errorf("get %s: %w", f.Path, err))
	}
	if err := remoteOn(f.Node, r); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}
