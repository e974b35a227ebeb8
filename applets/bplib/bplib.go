// Package bplib implements bplib, which manages the master's list of
// libraries prestaged on (assumed present and cached on) the nodes.
//
//	bplib -a path...   add
//	bplib -d path...   delete
//	bplib -l           list, one path per line
//	bplib -c           clear: delete every listed path
//
// Paths are on the master; a relative one is made absolute against the
// current directory. Only root (or, in a beo sim, the user running it)
// may change the list: the master refuses anyone else, and bplib prints
// its answer ("bplib: permission denied: only root may change the library
// list"). -a, -d and -c print nothing.
package bplib

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
)

const usage = "usage: bplib -a path... | -d path... | -l | -c"

type action int

const (
	list action = iota
	add
	del
	clearAll
)

// Run is the bplib applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	act, paths, err := parse(args, stdio.Err)
	if err != nil {
		return err
	}
	cl, err := bproc.Dial(ctx, "")
	if err != nil {
		return err
	}
	defer cl.Close()
	switch act {
	case add:
		_, err = cl.Lib(ctx, paths, nil)
	case del:
		_, err = cl.Lib(ctx, nil, paths)
	case clearAll:
		var all []string
		if all, err = cl.Lib(ctx, nil, nil); err == nil && len(all) > 0 {
			_, err = cl.Lib(ctx, nil, all)
		}
	default:
		var all []string
		if all, err = cl.Lib(ctx, nil, nil); err == nil {
			err = writeList(stdio.Out, all)
		}
	}
	return err
}

func parse(args []string, errOut io.Writer) (action, []string, error) {
	var a, d, l, c bool
	fs := applets.NewFlagSet("bplib", usage, errOut)
	fs.BoolVar(&a, "a", false, "add the paths to the library list")
	fs.BoolVar(&d, "d", false, "delete the paths from the library list")
	fs.BoolVar(&l, "l", false, "list the libraries")
	fs.BoolVar(&c, "c", false, "clear the library list")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return 0, nil, err
	}
	n := 0
	for _, b := range []bool{a, d, l, c} {
		if b {
			n++
		}
	}
	if n != 1 {
		return 0, nil, &applets.Usage{Line: usage, Msg: "give exactly one of -a, -d, -l, -c"}
	}
	paths := fs.Args()
	if (a || d) && len(paths) == 0 {
		return 0, nil, &applets.Usage{Line: usage, Msg: "-a and -d want at least one path"}
	}
	if (l || c) && len(paths) > 0 {
		return 0, nil, &applets.Usage{Line: usage, Msg: fmt.Sprintf("unexpected argument %q", paths[0])}
	}
	for i, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return 0, nil, fmt.Errorf("%s: %w", p, err)
		}
		paths[i] = abs
	}
	switch {
	case a:
		return add, paths, nil
	case d:
		return del, paths, nil
	case c:
		return clearAll, nil, nil
	}
	return list, nil, nil
}

func writeList(w io.Writer, paths []string) error {
	for _, p := range paths {
		if _, err := fmt.Fprintln(w, p); err != nil {
			return err
		}
	}
	return nil
}
