package nfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/fstab"
	"github.com/beo-cluster/beo/pkg/wire"
)

// DefaultExportsFile is where the kernel server's exports go.
const DefaultExportsFile = "/etc/exports.d/beo.exports"

// readyWait bounds how long a booting node's mounts wait for the server
// to come up (ganesha takes ~0.1 s; a node can connect before that when
// beo master has just started).
const readyWait = 10 * time.Second

// Options configure a Service.
type Options struct {
	// Fstab is the fstab every node reads (node N's own is Fstab.N); ""
	// means none: no mounts, no exports.
	Fstab string
	// Master is the master's cluster address: $MASTER, and where ganesha
	// listens.
	Master netip.Addr
	// Clients returns the addresses that may mount (the config's
	// iprange, see Prefixes), asked at each Reload.
	Clients func() []netip.Prefix
	Kind    Kind   // Auto ("") detects
	RunDir  string // ganesha's config, log, pid file and recovery state
	// ExportsFile is the kernel server's exports file; default
	// DefaultExportsFile.
	ExportsFile string
	Port        int // NFS port; default 2049
	Log         *slog.Logger
	// LookPath and Proc (default exec.LookPath, /proc) are for tests.
	LookPath func(string) (string, error)
	Proc     string
}

// Service is beo master's NFS side: it keeps the chosen server exporting
// what the fstab files need (Reload), runs it (Serve), and gives each
// node its resolved fstab lines (Mounts, for master.Config.Mounts).
type Service struct {
	o    Options
	kind Kind
	why  string
	srv  server

	mu       sync.Mutex
	known    map[string]bool   // export paths the last Reload saw (served or refused)
	refused  map[string]string // path → why it is not exported
	exported int
	told     bool // the "no server" line was logged
}

// New makes a Service; it starts nothing (Serve does).
func New(o Options) (*Service, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.LookPath == nil {
		o.LookPath = exec.LookPath
	}
	if o.Proc == "" {
		o.Proc = "/proc"
	}
	if o.Port == 0 {
		o.Port = 2049
	}
	if o.ExportsFile == "" {
		o.ExportsFile = DefaultExportsFile
	}
	if o.Clients == nil {
		o.Clients = func() []netip.Prefix { return nil }
	}
	s := &Service{o: o, kind: o.Kind, known: map[string]bool{}, refused: map[string]string{}}
	switch s.kind {
	case "", Auto:
		s.kind, s.why = Detect(o.Proc, o.LookPath)
	case None:
		s.why = "no NFS server: beo master -nfs none"
	default:
		s.why = "asked for"
	}
	switch s.kind {
	case Kernel:
		s.srv = &kernelServer{file: o.ExportsFile, proc: o.Proc, log: o.Log}
	case Ganesha:
		exe, err := o.LookPath("ganesha.nfsd")
		if err != nil {
			return nil, fmt.Errorf("nfs: %w (Debian nfs-ganesha nfs-ganesha-vfs)", err)
		}
		if !o.Master.IsValid() {
			return nil, errors.New("nfs: ganesha needs the master's cluster address")
		}
		if o.RunDir == "" {
			return nil, errors.New("nfs: ganesha needs a run directory")
		}
		s.srv = newGanesha(exe, o.RunDir, o.Master.Unmap(), o.Port, o.Log)
	default:
		s.srv = noServer{why: s.why}
	}
	return s, nil
}

// Kind is the server the Service uses, and why.
func (s *Service) Kind() (Kind, string) { return s.kind, s.why }

// Serve exports what the fstab files need and keeps the server running
// until ctx ends, then stops it (ganesha) or withdraws beo's exports
// (kernel).
func (s *Service) Serve(ctx context.Context) error {
	s.Reload()
	s.srv.run(ctx)
	return nil
}

// tables reads every fstab file: Fstab and each Fstab.N.
func (s *Service) tables() []*fstab.Table {
	if s.o.Fstab == "" {
		return nil
	}
	var out []*fstab.Table
	files := []string{s.o.Fstab}
	more, _ := filepath.Glob(s.o.Fstab + ".*")
	for _, f := range more {
		if _, err := strconv.Atoi(strings.TrimPrefix(f, s.o.Fstab+".")); err == nil {
			files = append(files, f)
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			s.o.Log.Warn("fstab", "err", err)
			continue
		}
		t, _ := fstab.Parse(f, data)
		out = append(out, t)
	}
	return out
}

// Reload re-reads every fstab file and has the server export what they
// need (beo master calls it at start and on SIGHUP; Mounts calls it when
// a node's file asks for a path it has not seen).
func (s *Service) Reload() {
	all := Exports(s.tables(), s.o.Master, s.o.Clients())
	ok, refused := Servable(all)
	s.mu.Lock()
	s.known = map[string]bool{}
	for _, x := range all {
		s.known[x.Path] = true
	}
	for p, why := range refused {
		if s.refused[p] != why {
			s.o.Log.Warn("nfs: not exported", "path", p, "why", why)
		}
	}
	s.refused, s.exported = refused, len(ok)
	tell := len(all) > 0 && s.kind == None && !s.told
	s.told = s.told || tell
	s.mu.Unlock()
	if tell {
		s.o.Log.Error("nfs: no NFS server can run; the fstab's NFS lines from the master will fail", "why", s.why)
	}
	if err := s.srv.apply(ok); err != nil {
		s.o.Log.Error("nfs: exports not applied", "err", err)
		return
	}
	if len(ok) > 0 {
		paths := make([]string, len(ok))
		for i, x := range ok {
			paths[i] = x.Path
		}
		s.o.Log.Info("nfs: exporting", "server", s.kind, "paths", strings.Join(paths, ","))
	}
}

// Mounts gives node n (at addr) its fstab lines, resolved (pkg/fstab),
// for master.Config.Mounts. Notes, for the node's log, name lines the
// master cannot serve: no server, a path not exported and why, warnings
// of the file. A bad line without nonfatal is the error (the node goes
// error without mounting anything); with nonfatal it is a note. Before a
// mount of the master's exports it waits (up to 10 s) for the server to
// serve.
func (s *Service) Mounts(n int, addr netip.Addr) ([]wire.Mount, []string, error) {
	if s.o.Fstab == "" {
		return nil, nil, nil
	}
	t, err := fstab.Load(s.o.Fstab, n)
	if t == nil {
		return nil, nil, err // no file (nil), or one that cannot be read
	}
	var notes []string
	for _, d := range t.Diags() {
		if d.Severity == config.Warning {
			notes = append(notes, d.String()+" (warning)")
		}
	}
	ms, bad := t.Resolve(fstab.Vars{Master: s.o.Master, Node: addr})
	for _, b := range bad {
		if b.Fatal() {
			return nil, notes, fmt.Errorf("%s:%d: %s", t.File, b.Line, b.Bad)
		}
		notes = append(notes, fmt.Sprintf("%s:%d: not mounted (nonfatal): %s", t.File, b.Line, b.Bad))
	}
	var needs []fstab.Mount
	for _, m := range ms {
		if m.Export != "" {
			needs = append(needs, m)
		}
	}
	if len(needs) > 0 {
		s.mu.Lock()
		unseen := slices.ContainsFunc(needs, func(m fstab.Mount) bool { return !s.known[m.Export] })
		s.mu.Unlock()
		if unseen { // the file changed since the last Reload
			s.Reload()
		}
		s.mu.Lock()
		served := slices.ContainsFunc(needs, func(m fstab.Mount) bool { return s.refused[m.Export] == "" })
		s.mu.Unlock()
		if served {
			ctx, cancel := context.WithTimeout(context.Background(), readyWait)
			s.srv.wait(ctx)
			cancel()
		}
		up, why := s.srv.status()
		s.mu.Lock()
		for _, m := range needs {
			switch {
			case s.refused[m.Export] != "":
				notes = append(notes, fmt.Sprintf("%s: the master does not export %s: %s; this mount will fail", m.Where(), m.Export, s.refused[m.Export]))
			case !up:
				notes = append(notes, fmt.Sprintf("%s: no NFS server serves %s on the master (%s): %s; this mount will fail", m.Where(), m.Export, s.kind, why))
			}
		}
		s.mu.Unlock()
	}
	out := make([]wire.Mount, len(ms))
	for i, m := range ms {
		out[i] = wire.Mount{Source: m.Source, Target: m.Target, Type: m.Type, Options: m.Options,
			Fatal: m.Fatal, Mirror: m.Mirror, File: m.File, Line: m.Line}
	}
	return out, notes, nil
}
