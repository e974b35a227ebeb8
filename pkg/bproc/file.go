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
func (c *Client) Put(ctx context.Context, f wire.File, tarStream io.Reader) error {
	st, err := c.open(ctx, wire.Header{Op: wire.OpPut, File: &f})
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
			res <- fmt.Errorf("node %d: put %s: %w", f.Node, f.Path, err)
			return
		}
		if r.Err != "" {
			res <- errors.New(r.Err)
			return
		}
		res <- nil
	}()
	_, cerr := io.CopyBuffer(struct{ io.Writer }{st}, struct{ io.Reader }{tarStream}, make([]byte, 1<<20))
	if cerr == nil {
		cerr = st.Close() // yamux Close is a half-close: the Result still arrives
	}
	if err := <-res; err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("node %d: put %s: %w", f.Node, f.Path, cerr)
	}
	return nil
}

// Get returns a tar stream of f.Path on node f.Node. The caller closes it.
func (c *Client) Get(ctx context.Context, f wire.File) (io.ReadCloser, error) {
	st, err := c.open(ctx, wire.Header{Op: wire.OpGet, File: &f})
	if err != nil {
		return nil, err
	}
	var r wire.Result
	if err := wire.Read(st, &r); err != nil {
		st.Close()
		return nil, fmt.Errorf("node %d: get %s: %w", f.Node, f.Path, err)
	}
	if r.Err != "" {
		st.Close()
		return nil, errors.New(r.Err)
	}
	return st, nil
}
