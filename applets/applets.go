// Package applets holds what every beo command shares: the standard streams
// an applet is given and the error values main.go maps to exit codes.
//
// Each command lives in its own sub-package (applets/bpsh, applets/config, …)
// and exports one function:
//
//	func Run(ctx context.Context, args []string, io applets.IO) error
//
// args excludes the command name. Applets parse args with their own
// flag.FlagSet, call into pkg/, print results to io.Out and problems to
// io.Err, and return an error instead of exiting. main.go owns exit codes:
// nil → 0, *Usage → 2, *Exit → its Code, any other error → 1 after printing
// "name: error".
package applets

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// IO is the set of standard streams handed to an applet.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

// Usage reports bad command-line use. main prints Msg (if any) and the
// applet's usage line to stderr and exits 2.
type Usage struct {
	Line string // e.g. "usage: bpsh [options] nodespec command [args...]"
	Msg  string // what was wrong, may be empty
}

func (u *Usage) Error() string {
	if u.Msg == "" {
		return u.Line
	}
	return u.Msg + "\n" + u.Line
}

// Exit asks main to exit with Code without printing anything more: the
// applet already reported what happened (bpsh returning a remote status).
type Exit struct{ Code int }

func (e *Exit) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// NewFlagSet returns a FlagSet that reports errors instead of exiting or
// printing: ParseFlags and main say what went wrong, once. errOut is
// where -h prints the usage line and the flags.
func NewFlagSet(name, usage string, errOut io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() {}
	return fs
}

// ParseFlags parses args with fs. -h/-help prints the usage line and the
// flags to fs's output and returns *Exit{0}; any other flag error becomes
// *Usage (main prints it and the usage line, and exits 2).
func ParseFlags(fs *flag.FlagSet, usage string, args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard) // the error comes back to main instead
	err := fs.Parse(args)
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(out, usage)
		fs.PrintDefaults()
		return &Exit{Code: 0}
	}
	if err != nil {
		return &Usage{Line: usage, Msg: err.Error()}
	}
	return nil
}

// AddrFlag parses the value of flag -name as an IP address; "" is the
// zero Addr (the flag was not given). A bad value is a usage error.
func AddrFlag(usage, name, value string) (netip.Addr, error) {
	if value == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(value)
	if err != nil {
		return netip.Addr{}, &Usage{Line: usage, Msg: fmt.Sprintf("-%s %q: not an IP address", name, value)}
	}
	return a, nil
}

// OnHangup calls fn for each SIGHUP the process receives until ctx ends or
// the returned stop is called: daemons reload their config there. While it
// is active, SIGHUP no longer terminates the process.
func OnHangup(ctx context.Context, fn func()) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				fn()
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
	}
}

// Links makes the applet symlinks (beo, bpsh, bpstat, …) in dir with
// `self install-links dir`: beo sim and beo lab put dir first on the PATH
// of the command they run, and print it for a second shell.
func Links(ctx context.Context, self, dir string) error {
	cmd := exec.CommandContext(ctx, self, "install-links", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("install-links %s: %w %s", dir, err, out)
	}
	return nil
}

// Command returns how beo sim and beo lab run a user's argv with env:
// the applet of that name in bin (see Links) if there is one, else
// argv[0] on PATH, else `self argv…`, so that beo says what is unknown.
// Its stdio is stdio's.
func Command(ctx context.Context, self, bin string, argv, env []string, stdio IO) *exec.Cmd {
	name := argv[0]
	var cmd *exec.Cmd
	if _, err := os.Stat(filepath.Join(bin, name)); err == nil && !strings.Contains(name, "/") {
		cmd = exec.CommandContext(ctx, filepath.Join(bin, name), argv[1:]...)
	} else if _, err := exec.LookPath(name); err == nil {
		cmd = exec.CommandContext(ctx, name, argv[1:]...)
	} else {
		cmd = exec.CommandContext(ctx, self, argv...)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.In, stdio.Out, stdio.Err
	cmd.Env = env
	return cmd
}

// CommandExit maps the end of a Command to what the applet returns: its
// exit status as *Exit (255 for a signal), or the error starting it.
func CommandExit(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if code < 0 { // killed by a signal
			code = 255
		}
		return &Exit{Code: code}
	}
	return err
}

// Plural returns "1 node" or "N nodes" for n and word "node".
func Plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
