package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/beo-cluster/beo/pkg/accept"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/pin/tftp/v3"
)

// This file serves files: TFTP for firmware PXE, HTTP for iPXE and the
// node's init.

// ErrBadName is returned for a file name that could leave its root.
var ErrBadName = errors.New("bad file name")

// cleanName checks a requested file name: relative, no "." or ".."
// elements, no empty elements, no backslash or NUL. It returns the name
// without a trailing slash.
func cleanName(name string) (string, error) {
	switch {
	case name == "", len(name) > 1024:
		return "", fmt.Errorf("%w: %q: empty or too long", ErrBadName, name)
	case strings.HasPrefix(name, "/"):
		return "", fmt.Errorf("%w: %q: absolute", ErrBadName, name)
	case strings.ContainsAny(name, "\\\x00"):
		return "", fmt.Errorf("%w: %q: backslash or NUL", ErrBadName, name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == "" || el == "." || el == ".." {
			return "", fmt.Errorf("%w: %q: empty, . or .. element", ErrBadName, name)
		}
	}
	return name, nil
}

// openIn opens name inside root as a regular file. os.Root refuses
// symlinks that lead out of the root.
func openIn(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	name, err := cleanName(name)
	if err != nil {
		return nil, nil, err
	}
	if root == nil {
		return nil, nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: not a regular file", name)
	}
	return f, fi, nil
}

// serveTFTP serves the TFTP root read-only on conn until ctx ends.
func (s *Server) serveTFTP(ctx context.Context, conn *net.UDPConn) error {
	srv := tftp.NewServer(s.tftpRead, nil)
	srv.SetTimeout(2 * time.Second)
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			srv.Shutdown()
		case <-done:
		}
	}()
	err := srv.Serve(conn)
	close(done)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("boot: tftp: %w", err)
}

// Bounds on TFTP transfers in flight: each holds a socket and two
// 64 KiB buffers until its client has acknowledged the last block, or
// for the retries' timeouts (10 s and more) when it never does. A host
// on the cluster network — a user's job on a node needs no privilege
// for it — sending read requests it never acknowledges could otherwise
// hold thousands at once and run the master out of memory. Firmware
// fetches one file at a time (a size probe first), so a few per client
// address are plenty; more are refused with a TFTP error, and the
// client's firmware retries.
const (
	maxTFTP        = 256
	maxTFTPPerPeer = 4
)

// tftpSlots counts the transfers in flight, in all and by client address.
type tftpSlots struct {
	mu     sync.Mutex
	all    int
	byPeer accept.Slots // Max maxTFTPPerPeer (New)
}

// take claims a slot for a transfer to peer; release gives it back.
func (t *tftpSlots) take(peer netip.Addr) (release func(), err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.all >= maxTFTP {
		return nil, fmt.Errorf("busy: %d transfers in flight", t.all)
	}
	releasePeer, n := t.byPeer.Take(peer)
	if releasePeer == nil {
		return nil, fmt.Errorf("busy: %d transfers in flight to %s", n, peer)
	}
	t.all++
	return func() {
		releasePeer()
		t.mu.Lock()
		t.all--
		t.mu.Unlock()
	}, nil
}

// tftpRead answers one TFTP read request.
func (s *Server) tftpRead(name string, rf io.ReaderFrom) error {
	peer := ""
	var from netip.Addr
	if r, ok := rf.(interface{ RemoteAddr() net.UDPAddr }); ok {
		a := r.RemoteAddr()
		peer = a.String()
		from = a.AddrPort().Addr().Unmap()
	}
	release, err := s.transfers.take(from)
	if err != nil {
		s.log.Warn("tftp refused", "file", name, "peer", peer, "err", err)
		return err
	}
	defer release()
	f, fi, err := openIn(s.tftp, name)
	if err != nil {
		s.log.Warn("tftp refused", "file", name, "peer", peer, "err", err)
		return err
	}
	defer f.Close()
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		ot.SetSize(fi.Size())
	}
	n, err := rf.ReadFrom(f)
	s.tftpDialog(peer, "tftp %s: %d bytes, err=%v", name, n, err)
	return err
}

// tftpDialog logs a transfer in the node's log when the peer's address
// is a node's, else in the daemon log.
func (s *Server) tftpDialog(peer, format string, args ...any) {
	if ap, err := netip.ParseAddrPort(peer); err == nil {
		if n, ok := s.Config().NodeByAddr(ap.Addr()); ok {
			if err := s.logs.Printf(n, format, args...); err == nil {
				return
			}
		}
	}
	s.log.Info(fmt.Sprintf(format, args...), "peer", peer)
}

// Handler returns the HTTP handler: /boot/NAME, /image/PATH, /ipxe/MAC.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boot/{name...}", func(w http.ResponseWriter, r *http.Request) {
		s.serveFile(w, r, s.boot, r.PathValue("name"))
	})
	mux.HandleFunc("GET /image/{path...}", s.serveImage)
	mux.HandleFunc("GET /ipxe/{mac}", s.serveScript)
	return mux
}

// maxHTTPPerAddr bounds the boot HTTP connections open at once from one
// address: iPXE and beoclient fetch one file at a time, and a host that
// opens connections it never reads from (slow to send the request, or
// never taking the answer) holds its own places only.
const maxHTTPPerAddr = 16

// httpStall is how long an answer may make no progress (a client that
// stopped reading) before its connection is dropped (accept.Stall).
const httpStall = time.Minute

func (s *Server) serveHTTP(ctx context.Context, l net.Listener) error {
	l = accept.Stall(accept.PerAddr(l, maxHTTPPerAddr, s.log, "boot http"), httpStall)
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	defer stop()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) || ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("boot: http: %w", err)
}

// serveFile serves name from root (Range and HEAD included).
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, root *os.Root, name string) {
	f, fi, err := openIn(root, name)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	defer f.Close()
	s.httpDialog(r, "http %s %s: %d bytes", r.Method, r.URL.Path, fi.Size())
	start := time.Now()
	cw := &countWriter{ResponseWriter: w}
	http.ServeContent(cw, r, fi.Name(), fi.ModTime(), f)
	// The end of a transfer too, so the boot timeline can tell the
	// kernel and initrd fetch from what the node does with them.
	s.httpDialog(r, "http %s %s: sent %d bytes in %v", r.Method, r.URL.Path, cw.n, time.Since(start).Round(time.Millisecond))
}

// countWriter counts the body bytes written through it.
type countWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (c *countWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// ReadFrom keeps http's sendfile path (a plain Write loop would copy).
func (c *countWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(c.ResponseWriter, r)
	c.n += n
	return n, err
}

// serveImage serves a kernel or initrd path the config names.
func (s *Server) serveImage(w http.ResponseWriter, r *http.Request) {
	rel := r.PathValue("path")
	if _, err := cleanName(rel); err != nil {
		s.httpError(w, r, err)
		return
	}
	p, ok := s.imagePath(rel)
	if !ok {
		s.httpError(w, r, fmt.Errorf("/%s: not an image the config names: %w", rel, fs.ErrNotExist))
		return
	}
	if !strings.HasPrefix(p, "/") {
		s.serveFile(w, r, s.boot, p) // relative paths live in the boot dir
		return
	}
	f, err := os.Open(p)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		s.httpError(w, r, fmt.Errorf("%s: not a regular file: %w", p, fs.ErrNotExist))
		return
	}
	s.httpDialog(r, "http %s %s (%s): %d bytes", r.Method, r.URL.Path, p, fi.Size())
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

// serveScript serves a node's iPXE script; serving the pxe script of a
// pxe+local node moves it to stage local.
func (s *Server) serveScript(w http.ResponseWriter, r *http.Request) {
	m, err := config.ParseMAC(r.PathValue("mac"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cfg := s.Config()
	mt := cfg.Lookup(m)
	if mt.Kind != config.KindNode {
		s.httpError(w, r, fmt.Errorf("%s is not a node's MAC (%s): %w", m, mt.Kind, fs.ErrNotExist))
		return
	}
	spec, _ := cfg.Node(mt.Node)
	script, boots := s.Script(cfg, spec)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if _, err := io.WriteString(w, script); err != nil {
		s.logs.Printf(mt.Node, "ipxe script: write to %s: %v", r.RemoteAddr, err)
		return
	}
	what := "boot next device"
	if boots {
		what = "kernel " + s.imageURL(spec.Kernel, "kernel") + " initrd " + spec.Initrd.String() + " cmdline " + s.Cmdline(cfg, spec)
		if !spec.Initrd.None {
			what = "kernel " + s.imageURL(spec.Kernel, "kernel") + " initrd " + s.imageURL(spec.Initrd, "initrd") + " cmdline " + s.Cmdline(cfg, spec)
		}
	}
	s.logs.Printf(mt.Node, "http %s %s from %s: stage %s, %s", r.Method, r.URL.Path, r.RemoteAddr, spec.Stage, what)
	if r.Method != http.MethodGet {
		return
	}
	if from, err := netip.ParseAddrPort(r.RemoteAddr); err != nil || from.Addr().Unmap() != spec.Addr {
		// Only the node's own iPXE ends its network boot: anyone who
		// knows its MAC (bpstat -l shows them) could otherwise cancel
		// another node's re-provisioning.
		s.logs.Printf(mt.Node, "%s asked for its script, not node %d's address (%s): its boot-stage stays %s", r.RemoteAddr, mt.Node, spec.Addr, spec.Stage)
		return
	}
	if stage, change := spec.AfterPXE(); change {
		if err := s.SetStage(mt.Node, stage); err != nil {
			s.log.Error("boot-stage rewrite", "node", mt.Node, "err", err)
			s.logs.Printf(mt.Node, "boot-stage rewrite to %s failed: %v", stage, err)
			return
		}
		s.logs.Printf(mt.Node, "boot-stage rewritten to %s (pxe+local)", stage)
	}
}

// SetStage rewrites node n's boot-stage in the config file.
func (s *Server) SetStage(n int, stage config.BootStage) error {
	return s.edit(fmt.Sprintf("node %d: boot-stage %s", n, stage), func(f *config.File) (bool, error) {
		spec, ok := f.Config().Node(n)
		if !ok || spec.Stage == stage {
			return false, nil
		}
		return true, f.SetBootStage(n, stage)
	})
}

func (s *Server) httpError(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusNotFound
	if errors.Is(err, ErrBadName) {
		code = http.StatusBadRequest
	} else if !errors.Is(err, fs.ErrNotExist) {
		code = http.StatusForbidden
	}
	s.log.Warn("http refused", "path", r.URL.Path, "peer", r.RemoteAddr, "code", code, "err", err)
	http.Error(w, http.StatusText(code), code)
}

func (s *Server) httpDialog(r *http.Request, format string, args ...any) {
	s.tftpDialog(r.RemoteAddr, format, args...)
}
