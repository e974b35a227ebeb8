// Package beostatus implements the beostatus command: it serves the live
// cluster dashboard of a running master (pkg/dashboard) on an address of
// its own, passing every request through to the master. `beo master`
// itself serves the dashboard on 127.0.0.1:5546; this command is for
// looking at it from elsewhere — another address or port, or a master
// reached through a tunnel — and for testing the page against a master.
//
//	beostatus [-url MASTER_URL] [-listen ADDR]
//
// It prints the URL to open. Only GET and HEAD pass: the dashboard is
// read-only. It refuses what the dashboard refuses (dashboard.Hosts, a
// guard against DNS rebinding) itself, since the master sees only its
// own address in the requests it relays.
package beostatus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/dashboard"
)

const usage = "usage: beostatus [-url MASTER_URL] [-listen ADDR]"

// Run is the beostatus applet.
func Run(ctx context.Context, args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet("beostatus", usage, stdio.Err)
	def := os.Getenv(dashboard.URLEnv)
	if def == "" {
		def = dashboard.DefaultURL
	}
	master := fs.String("url", def, "the master's beostatus URL")
	listen := fs.String("listen", "127.0.0.1:8546", "address to serve the dashboard on")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &applets.Usage{Line: usage, Msg: "unexpected arguments"}
	}
	target, err := url.Parse(*master)
	if err != nil || target.Scheme == "" || target.Host == "" {
		return &applets.Usage{Line: usage, Msg: fmt.Sprintf("-url %q: want http://HOST:PORT", *master)}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(stdio.Out, "beostatus: http://%s/ (master %s)\n", ln.Addr(), target)
	return Serve(ctx, ln, target)
}

// Serve passes GET and HEAD requests on ln through to target until ctx
// ends. Event streams are flushed as they come.
func Serve(ctx context.Context, ln net.Listener, target *url.URL) error {
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
		},
		FlushInterval: -1, // Server-Sent Events
	}
	hosts := dashboard.NewHosts()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hosts.Allowed(r.Host) { // the master's check sees only target.Host
			dashboard.Refuse(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: GET only", http.StatusMethodNotAllowed)
			return
		}
		proxy.ServeHTTP(w, r)
	})
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	stop := context.AfterFunc(ctx, func() { hs.Close() })
	defer stop()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("beostatus: %w", err)
	}
	return nil
}
