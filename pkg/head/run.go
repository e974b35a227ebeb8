package head

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// Unit is one daemon of a head node, its sockets open: Serve runs it
// until ctx ends (then it returns nil) or it fails.
type Unit struct {
	Name  string
	Serve func(context.Context) error
}

// Run runs units until ctx ends or one of them fails; the first failure
// stops the others and is returned, naming its unit. While they run, a
// SIGHUP reloads r (nil: no config to reload). Run tells systemd (when
// NOTIFY_SOCKET is set, Type=notify) that the head is ready once every
// unit has started, that it is reloading around each reload, and that it
// is stopping.
func Run(ctx context.Context, log *slog.Logger, r *Reloader, units ...Unit) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, u := range units {
		g.Go(func() error {
			if err := u.Serve(gctx); err != nil {
				return fmt.Errorf("%s: %w", u.Name, err)
			}
			return nil
		})
	}
	hup := make(chan os.Signal, 1)
	if r != nil {
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	notify(log, daemon.SdNotifyReady)
	defer notify(log, daemon.SdNotifyStopping)
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	for {
		select {
		case err := <-done:
			return err
		case <-hup:
			r.reloadNotified(log)
		}
	}
}

// reloadNotified reloads r, telling systemd (Type=notify units may say
// RELOADING=1 and READY=1 around a reload; the MONOTONIC_USEC that
// Type=notify-reload wants rides along).
func (r *Reloader) reloadNotified(log *slog.Logger) {
	notify(log, daemon.SdNotifyReloading+"\n"+monotonic())
	r.Reload() // logs what it refused
	notify(log, daemon.SdNotifyReady)
}

// notify sends state to systemd's notify socket if there is one.
func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("sd_notify", "state", state, "err", err)
	}
}

// monotonic is the MONOTONIC_USEC= line: now on CLOCK_MONOTONIC.
func monotonic() string {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return fmt.Sprintf("MONOTONIC_USEC=%d", ts.Sec*1e6+ts.Nsec/1e3)
}
