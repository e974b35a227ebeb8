package head

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/beo-cluster/beo/pkg/config"
)

// Reloader owns a head node's cluster config: its one load, its one
// reload path (SIGHUP, `beo master reload`, a file beoserv rewrote
// itself) and the daemons that follow it. Every daemon of a head node —
// `beo master`'s or a standalone one — takes its config from here.
type Reloader struct {
	path string
	opts config.Options
	log  *slog.Logger

	mu     sync.Mutex // one reload at a time
	cur    atomic.Pointer[config.Config]
	owner  func(*config.File) error // the daemon that edits the file itself (beoserv)
	follow []func(*config.Config)
	before []func(next *config.Config) // warnings to log before applying
}

// Load reads and validates the config at path (opts as config.Open) and
// logs its warnings; a file with errors is refused with each as file:line.
func Load(path string, opts config.Options, log *slog.Logger) (*Reloader, *config.File, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f, err := config.Open(path, opts)
	if err != nil {
		return nil, nil, err
	}
	r := &Reloader{path: path, opts: opts, log: log}
	r.warn(f.Config())
	r.cur.Store(f.Config())
	return r, f, nil
}

// Config is the running config.
func (r *Reloader) Config() *config.Config { return r.cur.Load() }

// Path is the config file's path.
func (r *Reloader) Path() string { return r.path }

// Own makes set the file's owner: it is handed every reloaded file first
// and may refuse it (the boot server checks what it serves); a refusal
// keeps the running config everywhere.
func (r *Reloader) Own(set func(*config.File) error) { r.owner = set }

// Follow registers a daemon that takes every config the head adopts.
func (r *Reloader) Follow(apply func(*config.Config)) { r.follow = append(r.follow, apply) }

// Before registers a check that logs what a new config would do before
// it is applied (the up nodes it drops).
func (r *Reloader) Before(warn func(next *config.Config)) { r.before = append(r.before, warn) }

// Reload re-reads the file and hands it to the owner and every follower.
// A file with errors, or one the owner refuses, is not applied: the
// running config stays, every error is logged (file:line) and returned.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := config.Open(r.path, r.opts)
	if err != nil {
		var de *config.DiagError
		if errors.As(err, &de) {
			for _, d := range de.Diags {
				r.log.Error("reload refused; keeping the running config", "diag", d.String())
			}
		} else {
			r.log.Error("reload refused; keeping the running config", "err", err)
		}
		return err
	}
	next := f.Config()
	r.warn(next)
	for _, w := range r.before {
		w(next)
	}
	if r.owner != nil {
		if err := r.owner(f); err != nil {
			r.log.Error("reload refused by the boot server; keeping the running config", "err", err)
			return err
		}
	}
	r.adopt(next)
	r.log.Info("config reloaded", "file", r.path, "count", next.NodeCount())
	return nil
}

// Adopt takes a config the owner made by editing the file itself (a new
// node line, a boot stage rewritten) and hands it to every follower.
func (r *Reloader) Adopt(c *config.Config) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.adopt(c)
}

func (r *Reloader) adopt(c *config.Config) {
	r.cur.Store(c)
	for _, f := range r.follow {
		f(c)
	}
}

func (r *Reloader) warn(c *config.Config) {
	for _, d := range c.Diags() {
		r.log.Warn(d.String())
	}
}
