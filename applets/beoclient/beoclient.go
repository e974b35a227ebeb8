// Package beoclient implements beoclient, the compute node's init: the
// beo binary runs it as PID 1 (main.go dispatches here when its pid is 1
// or it is called "init"), and it is not meant to be run by hand.
//
//	beoclient
//
// The work is in pkg/pid1 (read its doc for the boot sequence and every
// kernel command-line option). This applet decides which daemons the node
// supervises — pid1.DefaultServices() minus those this binary lacks, so a
// binary built before beoklogd, sendstats or kickbackproxy existed still
// boots — makes SIGTERM, SIGINT and SIGHUP harmless, and never returns:
// if booting fails it reports the error and reboots (pid1.Fatal).
//
// The kernel hands init the command-line words it does not know as
// arguments; beoclient ignores them.
package beoclient

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/pid1"
)

const usage = "usage: beoclient   (the compute node's init; runs only as PID 1)"

// Applets lists the applet names of the dispatch table; main.go passes
// its own, so beoclient starts only daemons the binary has.
type Applets func() []string

// Run is the beoclient applet.
func (names Applets) Run(ctx context.Context, args []string, stdio applets.IO) error {
	if os.Getpid() != 1 {
		return &applets.Usage{Line: usage, Msg: "not PID 1: beoclient is the node's init"}
	}
	// A Go program ends on these by default, and the kernel panics when
	// PID 1 ends. (pid1 takes them over with its own handlers.)
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	ctx = context.WithoutCancel(ctx)
	console, ok := stdio.Err.(*os.File)
	if !ok {
		console = os.Stderr
	}
	var have []string
	if names != nil {
		have = names()
	}
	err := pid1.Boot(ctx, pid1.Config{Services: Services(have), Console: console})
	if err == nil {
		err = errors.New("init ended")
	}
	pid1.Fatal(pid1.NewLogger(console), err, nil)
	return err // not reached: Fatal reboots or blocks
}

// Services returns pid1.DefaultServices() that are among have.
func Services(have []string) []pid1.Service {
	var out []pid1.Service
	for _, s := range pid1.DefaultServices() {
		if slices.Contains(have, s.Name) {
			out = append(out, s)
		}
	}
	return out
}
