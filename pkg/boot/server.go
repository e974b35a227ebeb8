package boot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/nodelog"
	"golang.org/x/sync/errgroup"
)

// Defaults of the paths and ports Options may leave empty.
const (
	DefaultBootDir     = "/var/beowulf/boot"
	DefaultTFTPRoot    = "/usr/lib/ipxe"
	DefaultLogDir      = "/var/log/beowulf"
	DefaultUnknownFile = "/var/beowulf/unknown_addresses"
	DefaultLeaseTime   = 7 * 24 * time.Hour
	// DefaultCmdline is a node's kernel command line when the config sets
	// none: kernel messages on the VGA console and the first serial port
	// (the last console= is /dev/console: the serial one), and a reboot 30 s
	// after a panic.
	DefaultCmdline = "console=tty0 console=ttyS0,115200 panic=30"
)

// Options configure a Server. Zero values mean the defaults above; Iface
// and File (or Config) are required.
type Options struct {
	// Iface is the cluster network interface: DHCP and router
	// advertisements are bound to it.
	Iface string
	// Addr is this server's address and prefix on Iface; zero means
	// look it up (InterfaceAddr).
	Addr netip.Prefix
	// Config is the config file's path (reload re-reads it).
	Config string
	// File is the config already opened (with config.Options.Masters set
	// to Addr); nil means open Config.
	File *config.File

	BootDir     string // kernel, initrd, rootfs.cpio (beoboot's output)
	TFTPRoot    string // iPXE binaries for firmware PXE
	LogDir      string // per-node dialog logs node.N; "-" = none
	UnknownFile string // MACs the server may not assign

	DHCPPort int // 67
	TFTPPort int // 69; negative disables TFTP
	HTTPPort int // the config's `server http` (80); negative disables HTTP
	NoRA     bool

	LeaseTime      time.Duration
	DefaultCmdline string
	// ResolvConf is where, under the config's ipforward, the DNS servers
	// handed to nodes are read; "" = /etc/resolv.conf, then
	// systemd-resolved's /run/systemd/resolve/resolv.conf.
	ResolvConf string

	Log   *slog.Logger
	Clock func() time.Time
	// OnConfig, if set, is called (serially) with every config the server
	// adopts after editing the file itself: a node appended, a boot-stage
	// rewritten. `beo master` uses it to tell bpmaster about new nodes.
	OnConfig func(*config.Config)
	// OnBoot, if set, is called when a node's DHCP request (Discover or
	// Request, from the DHCP client port: only root on a host can send
	// one, never a user's job on a node) reaches this master: the node
	// is network-booting (its firmware, iPXE, or its init at every
	// boot). bpmaster renews the node's key pin on it. A fetch of a boot
	// file is no such sign: any user on a node could make one.
	OnBoot func(node int)
	// Ready, if set, is called once every socket is bound.
	Ready func(Addrs)
	// Modules, if set, names the kernel modules node n's file systems
	// need (its fstab's, pkg/fstab Table.Modules): they go on its kernel
	// command line (beo.modules=), so the node loads them while it
	// boots rather than when the master asks for its mounts.
	Modules func(node int) []string
	// MasterUp, if set, reports whether the master at an address (one
	// before this one in a node's masterorder) is up; by default its
	// bpmaster port is dialed (masters.go).
	MasterUp func(netip.Addr) bool
}

// Addrs are where a running Server listens.
type Addrs struct {
	Server     netip.Addr
	DHCP, TFTP net.Addr // TFTP nil when disabled
	HTTP       net.Addr // nil when disabled
}

// Server is beoserv. Make one with New, run it with Serve.
type Server struct {
	o        Options
	addr     netip.Prefix
	copt     config.Options
	log      *slog.Logger
	clock    func() time.Time
	httpPort int

	editMu sync.Mutex   // serializes config edits and reloads
	file   *config.File // guarded by editMu
	view   atomic.Pointer[view]

	forward bool                     // the config's ipforward when the server started
	dns     atomic.Pointer[[]net.IP] // the master's DNS servers, for ipforward answers

	boot      *os.Root  // BootDir, nil when it does not exist
	tftp      *os.Root  // TFTPRoot, nil when it does not exist
	transfers tftpSlots // TFTP transfers in flight
	unknown   *unknownList
	logs      nodelog.Log // the node logs, Who "beoserv"
	probe     masterProbe // the masters before this one (masters.go)
}

// view is one adopted config and what is derived from it.
type view struct {
	cfg    *config.Config
	images map[string]bool // kernel and initrd paths the config names
}

// New checks o and prepares a Server; it opens no socket.
func New(o Options) (*Server, error) {
	if o.Iface == "" {
		return nil, errors.New("boot: no cluster interface")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	setDefault(&o.BootDir, DefaultBootDir)
	setDefault(&o.TFTPRoot, DefaultTFTPRoot)
	setDefault(&o.LogDir, DefaultLogDir)
	setDefault(&o.UnknownFile, DefaultUnknownFile)
	setDefault(&o.DefaultCmdline, DefaultCmdline)
	if o.DHCPPort == 0 {
		o.DHCPPort = 67
	}
	if o.TFTPPort == 0 {
		o.TFTPPort = 69
	}
	if o.LeaseTime <= 0 {
		o.LeaseTime = DefaultLeaseTime
	}
	s := &Server{o: o, log: o.Log, clock: o.Clock, addr: o.Addr}
	s.transfers.byPeer.Max = maxTFTPPerPeer
	if !s.addr.IsValid() {
		p, err := config.InterfaceAddr(o.Iface)
		if err != nil {
			return nil, fmt.Errorf("boot: %w", err)
		}
		s.addr = p
	}
	s.copt = config.Options{Masters: []netip.Addr{s.addr.Addr()}}
	f := o.File
	if f == nil {
		if o.Config == "" {
			return nil, errors.New("boot: no config file")
		}
		var err error
		if f, err = config.Open(o.Config, s.copt); err != nil {
			return nil, fmt.Errorf("boot: %w", err)
		}
	} else if err := f.Config().Err(); err != nil {
		return nil, fmt.Errorf("boot: %w", err)
	}
	s.file = f
	s.publish(f.Config())
	s.dns.Store(new([]net.IP))
	if s.forward = f.Config().IPForward(); s.forward {
		s.readResolvers()
	}
	s.httpPort = o.HTTPPort
	if s.httpPort == 0 {
		s.httpPort = int(f.Config().Ports().HTTP)
	}
	var err error
	if s.boot, err = openRoot(o.BootDir); err != nil {
		return nil, fmt.Errorf("boot: boot dir: %w", err)
	}
	if s.tftp, err = openRoot(o.TFTPRoot); err != nil {
		return nil, fmt.Errorf("boot: tftp root: %w", err)
	}
	if s.boot == nil {
		s.log.Warn("boot dir missing; /boot/ answers 404 until beoboot writes it", "dir", o.BootDir)
	}
	if s.tftp == nil && o.TFTPPort > 0 {
		s.log.Warn("tftp root missing; firmware PXE clients get no iPXE binary", "dir", o.TFTPRoot)
	}
	s.unknown = &unknownList{path: o.UnknownFile}
	if o.LogDir != "-" {
		s.logs = nodelog.Log{Dir: o.LogDir, Who: "beoserv", Clock: o.Clock}
	}
	if !s.addr.Contains(f.Config().IPRange().From) {
		s.log.Warn("iprange is outside the interface's subnet; nodes get an unroutable address",
			"iface", o.Iface, "addr", s.addr, "iprange", f.Config().IPRange().From)
	}
	return s, nil
}

func setDefault(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

// openRoot opens dir as an os.Root; a missing dir is nil, no error.
func openRoot(dir string) (*os.Root, error) {
	r, err := os.OpenRoot(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return r, err
}

// Addr returns the server's address and prefix on the cluster interface.
func (s *Server) Addr() netip.Prefix { return s.addr }

// Config returns the config the server runs on now.
func (s *Server) Config() *config.Config { return s.view.Load().cfg }

// publish makes cfg the running config.
func (s *Server) publish(cfg *config.Config) {
	v := &view{cfg: cfg, images: map[string]bool{}}
	for _, n := range cfg.Nodes() {
		for _, st := range []config.Setting{n.Kernel, n.Initrd} {
			if st.IsSet() && !st.None {
				v.images[st.Value] = true
			}
		}
	}
	s.view.Store(v)
}

// SetFile adopts a config file someone else opened and checked (the
// master's SIGHUP); a file with errors is refused and the old one kept.
// ipforward stays as it was when the server started (the master's
// forwarding is set up once, at start); the DNS servers are read again.
func (s *Server) SetFile(f *config.File) error {
	if err := f.Config().Err(); err != nil {
		return fmt.Errorf("boot: config refused: %w", err)
	}
	s.editMu.Lock()
	defer s.editMu.Unlock()
	s.file = f
	s.publish(f.Config())
	if f.Config().IPForward() != s.forward {
		s.log.Warn("ipforward changed; restart beo master to apply it", "running", s.forward, "config", f.Config().IPForward())
	}
	if s.forward {
		s.readResolvers()
	}
	if p := int(f.Config().Ports().HTTP); s.o.HTTPPort == 0 && p != s.httpPort {
		s.log.Warn("server http changed; restart beoserv to move the HTTP port", "running", s.httpPort, "config", p)
	}
	return nil
}

// edit applies change to the config file and saves it. When the file
// changed on disk since it was read, it is re-read and change retried
// once. change returns false when, on the current file, nothing needs
// doing. A failed save leaves the file as it is on disk.
func (s *Server) edit(what string, change func(f *config.File) (bool, error)) error {
	s.editMu.Lock()
	defer s.editMu.Unlock()
	for try := 0; ; try++ {
		f := s.file
		need, err := change(f)
		if err != nil || !need {
			return err
		}
		err = f.Save()
		if err == nil {
			s.publish(f.Config())
			if s.o.OnConfig != nil {
				s.o.OnConfig(f.Config())
			}
			return nil
		}
		if s.o.Config == "" {
			return fmt.Errorf("%s: %w", what, err)
		}
		// Drop the unsaved edit: continue from what is on disk.
		nf, oerr := config.Open(s.o.Config, s.copt)
		if oerr != nil {
			return fmt.Errorf("%s: %w (and re-reading the file: %v)", what, err, oerr)
		}
		s.file = nf
		s.publish(nf.Config())
		var me *config.ModifiedError
		if !errors.As(err, &me) || try > 0 {
			return fmt.Errorf("%s: %w", what, err)
		}
		s.log.Info("config changed on disk; re-read it before editing", "file", s.o.Config)
	}
}

// Serve binds the DHCP, TFTP, HTTP and router-advertisement sockets and
// serves until ctx ends. A bind error (another DHCP server on the
// interface, a port in use) is returned at once.
func (s *Server) Serve(ctx context.Context) error {
	ip := s.addr.Addr().AsSlice()
	dconn, err := listenDHCP(s.o.Iface, s.o.DHCPPort)
	if err != nil {
		return fmt.Errorf("boot: %w", err)
	}
	defer dconn.Close()
	addrs := Addrs{Server: s.addr.Addr(), DHCP: dconn.LocalAddr()}
	var tconn *net.UDPConn
	if s.o.TFTPPort > 0 {
		tconn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: s.o.TFTPPort})
		if err != nil {
			return fmt.Errorf("boot: tftp: %w", err)
		}
		defer tconn.Close()
		addrs.TFTP = tconn.LocalAddr()
	}
	var hl net.Listener
	if s.httpPort > 0 {
		hl, err = net.Listen("tcp4", net.JoinHostPort(s.addr.Addr().String(), strconv.Itoa(s.httpPort)))
		if err != nil {
			return fmt.Errorf("boot: http: %w", err)
		}
		defer hl.Close()
		addrs.HTTP = hl.Addr()
	}
	var ra *raResponder
	if !s.o.NoRA {
		if ra, err = listenRA(s.o.Iface); err != nil {
			// iPXE still boots, 16 s slower: not a reason to refuse.
			s.log.Warn("no IPv6 router advertisements; iPXE will wait for IPv6 autoconfiguration", "err", err)
		} else {
			defer ra.Close()
		}
	}
	s.log.Info("beoserv listening", "iface", s.o.Iface, "addr", s.addr, "dhcp", addrs.DHCP,
		"tftp", addrs.TFTP, "http", addrs.HTTP, "ra", ra != nil)
	if s.o.Ready != nil {
		s.o.Ready(addrs)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.serveDHCP(gctx, dconn) })
	if tconn != nil {
		g.Go(func() error { return s.serveTFTP(gctx, tconn) })
	}
	if hl != nil {
		g.Go(func() error { return s.serveHTTP(gctx, hl) })
	}
	if ra != nil {
		g.Go(func() error { return ra.serve(gctx, s.log) })
	}
	return g.Wait()
}

// ConfigIface returns the first `interface` line of the config file at
// path, an error when it has none.
func ConfigIface(path string) (string, error) {
	cfg, err := config.Load(path, config.Options{})
	if cfg == nil {
		return "", err
	}
	if ifs := cfg.Interfaces(); len(ifs) > 0 {
		return ifs[0], nil
	}
	return "", fmt.Errorf("%s: no `interface` line; name the cluster interface with -iface", path)
}
