// Package version implements `beo version`: it prints the release version and
// the build hash embedded at build time (see pkg/buildinfo).
package version

import (
	"context"
	"fmt"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/buildinfo"
)

const usage = "usage: beo version"

// Run prints "beo VERSION (build HASH)".
func Run(ctx context.Context, args []string, io applets.IO) error {
	fs := applets.NewFlagSet("version", usage, io.Err)
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &applets.Usage{Line: usage, Msg: "version takes no arguments"}
	}
	_, err := fmt.Fprintf(io.Out, "beo %s (build %s)\n", buildinfo.Version(), buildinfo.Hash())
	return err
}
