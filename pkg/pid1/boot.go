package pid1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/pkg/bootparam"
	"github.com/beo-cluster/beo/pkg/cgroup"
	"github.com/beo-cluster/beo/pkg/nodefs"
	"github.com/u-root/u-root/pkg/mount"
	"golang.org/x/sys/unix"
)

// Config is what Boot runs on. Zero values mean defaults.
type Config struct {
	// Services are supervised in stage 2, in order (see DefaultServices).
	Services []Service
	// Console is the init's console: its own messages when the kernel
	// console would not show them, and the services' stdout and stderr.
	// Default os.Stderr (the kernel gives init /dev/console).
	Console *os.File
	// Cmdline is the kernel command line; "" = read /proc/cmdline.
	Cmdline string
	// Log, if set, replaces the console + /dev/kmsg logger.
	Log *slog.Logger
	// Power carries out reboot/halt/pwroff; default Power.
	Power func(action string) error
}

// rootSource names the node root's tmpfs in /proc/mounts.
const rootSource = "beoroot"

// ReadyMarker is logged once the node root is unpacked and bpslave runs:
// tests and admins watching a console look for it.
const ReadyMarker = "node ready"

// DefaultServices are the node's daemons in start order: beoklogd as
// soon as the network is up, then bpslave, sendstats and kickbackproxy.
// All but bpslave run at HelperNice. beoclient (the applet) drops those
// the binary does not have.
func DefaultServices() []Service {
	return []Service{
		{Name: "beoklogd", Early: true, Nice: HelperNice},
		{Name: "bpslave", Args: func(p bootparam.Params) []string {
			var ms []string // the primary first (bootparam MasterList)
			for _, a := range p.MasterList() {
				ms = append(ms, net.JoinHostPort(a.String(), strconv.Itoa(int(p.BProc))))
			}
			return []string{"-m", strings.Join(ms, ","),
				"-keys", nodefs.KeysDir, "-root", "/", "-cgroup", nodefs.JobsCgroup, "-pidspace",
				"-client-bin", filepath.Dir(nodefs.Binary)}
		}, Exited: KillJobs(cgroup.Group(nodefs.JobsCgroup))},
		{Name: "sendstats", Nice: HelperNice},
		{Name: "kickbackproxy", Nice: HelperNice},
	}
}

// Boot is the node's init. In the initrd (nodefs.Init exists) it runs stage
// 1 and ends by exec'ing the binary again as PID 1 in the node root, so
// on success it does not return. In the node root it runs stage 2 and
// returns only when ctx ends (which for a real PID 1 it never does) or on
// an error that leaves the node useless; the caller reports it and
// reboots (Fatal).
func Boot(ctx context.Context, cfg Config) error {
	if cfg.Console == nil {
		cfg.Console = os.Stderr
	}
	if cfg.Power == nil {
		cfg.Power = Power
	}
	if _, err := os.Lstat(nodefs.Init); err == nil {
		return stage1(ctx, cfg)
	}
	return stage2(ctx, cfg)
}

// logger returns cfg.Log or NewLogger(cfg.Console).
func (cfg Config) logger() *slog.Logger {
	if cfg.Log != nil {
		return cfg.Log
	}
	return NewLogger(cfg.Console)
}

// NewLogger returns the init's logger: text records without a time stamp
// (the kernel log and syslog add theirs) into /dev/kmsg, and onto console
// when the kernel's console log level would not show them.
func NewLogger(console io.Writer) *slog.Logger {
	out := newLogOutput("/dev", "/proc", console)
	return slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // the kernel log and syslog stamp it
			}
			return a
		},
	}))
}

func (cfg Config) params() (bootparam.Params, error) {
	cl := cfg.Cmdline
	if cl == "" {
		b, err := os.ReadFile("/proc/cmdline")
		if err != nil {
			return bootparam.Defaults(), fmt.Errorf("kernel command line: %w", err)
		}
		cl = string(b)
	}
	return bootparam.Parse(cl)
}

// stage1 runs in the initrd: kernel interfaces, modules, then the node
// root — a tmpfs capped by rootfs_size= holding the binary and its applet
// links — and switch_root into it, which frees the initrd and execs the
// binary there as PID 1.
func stage1(ctx context.Context, cfg Config) error {
	mountErr := mountAll("/", basicMounts())
	log := cfg.logger()
	if mountErr != nil {
		log.Error("mounts", "err", mountErr)
	}
	log.Info("beoclient stage 1: initrd")
	warmEntropy()
	p, err := cfg.params()
	if err != nil {
		return err
	}
	coldplug(log, "/")
	// Links come up (carrier, autonegotiation) while the root switches.
	linksUp(log)
	if err := ctx.Err(); err != nil {
		return err
	}
	// The modules not loaded yet wait in /run, which moves into the
	// node root, for stage 2.
	if err := copyModules("/", LaterModules); err != nil {
		log.Error("kernel modules: keep for later", "err", err)
	}
	size, err := tmpfsSize(p.RootfsSize)
	if err != nil {
		log.Error("ignoring rootfs_size", "err", err, "using", bootparam.DefaultRootSize)
		size = bootparam.DefaultRootSize
	}
	if err := makeRoot(nodefs.NewRoot, size); err != nil {
		return err
	}
	log.Info("switching to the node root", "root", nodefs.NewRoot, "size", size)
	// SwitchRoot moves /dev /proc /sys /run, deletes the initrd's files
	// and execs the binary, which finds itself PID 1 without nodefs.Init.
	return mount.SwitchRoot(nodefs.NewRoot, nodefs.Binary)
}

// makeRoot mounts the node root and copies the binary and its applet
// links (everything in the initrd's /bin) into it.
func makeRoot(root, size string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("node root: %w", err)
	}
	if err := unix.Mount(rootSource, root, "tmpfs", 0, "mode=0755,size="+size); err != nil {
		return fmt.Errorf("node root: mount tmpfs size=%s: %w", size, err)
	}
	for _, d := range []string{filepath.Dir(nodefs.Binary)[1:], "dev", "proc", "sys", "run", "etc", "tmp", "var/tmp", "root"} {
		mode := os.FileMode(0o755)
		switch d {
		case "tmp", "var/tmp":
			mode = 0o1777 | os.ModeSticky
		case "root":
			mode = 0o700
		}
		p := filepath.Join(root, d)
		if err := os.MkdirAll(p, mode.Perm()); err != nil {
			return fmt.Errorf("node root: %w", err)
		}
		if err := os.Chmod(p, mode); err != nil {
			return fmt.Errorf("node root: %w", err)
		}
	}
	bin := filepath.Dir(nodefs.Binary)
	ents, err := os.ReadDir(bin)
	if err != nil {
		return fmt.Errorf("node root: %w", err)
	}
	for _, e := range ents {
		src := filepath.Join(bin, e.Name())
		dst := filepath.Join(root, src)
		switch {
		case e.Type()&os.ModeSymlink != 0:
			t, err := os.Readlink(src)
			if err != nil {
				return fmt.Errorf("node root: %w", err)
			}
			if err := os.Symlink(t, dst); err != nil {
				return fmt.Errorf("node root: %w", err)
			}
		case e.Type().IsRegular():
			if err := copyFile(src, dst); err != nil {
				return fmt.Errorf("node root: %w", err)
			}
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// stage2 runs in the node root: network, log forwarding, the rootfs,
// the daemons; then it supervises them, reaps orphans and answers
// signals until ctx ends.
// FileLimit is the open-file limit init gives every process of the
// node (soft, hard): systemd's default, where the kernel gives init
// 1024/4096. bpslave grants a user's job no more than it has itself
// (pkg/slave ownCeiling), so a job asking the master's usual hard limit
// gets it.
var FileLimit = syscall.Rlimit{Cur: 1024, Max: 524288}

// raiseFileLimit sets FileLimit on init, which every service and job
// inherits; a kernel whose fs.nr_open is lower keeps what it allows.
func raiseFileLimit(log *slog.Logger) {
	l := FileLimit
	var open uint64
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			open = n
		}
	}
	if open > 0 {
		l.Max = min(l.Max, open)
	}
	// syscall's, not x/sys/unix's: the Go runtime then stops restoring
	// the limit it found at start in the children it forks.
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		log.Warn("open-file limit", "want", l, "err", err)
	}
}

func stage2(ctx context.Context, cfg Config) error {
	mountErr := mountAll("/", missing(basicMounts()))
	log := cfg.logger()
	if mountErr != nil {
		log.Error("mounts", "err", mountErr)
	}
	// (No UROOT_NOHWRNG=1: it sends u-root's reader to /dev/urandom,
	// which on Linux ≥ 5.18 waits for the CRNG too; see Randomness in
	// the package doc for what init does instead.)
	// beo's applet links come last: they shadow nothing the master's
	// layout (mirrored in the node root, or mounted from the master)
	// provides.
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:" + filepath.Dir(nodefs.Binary), "HOME=/root", "TERM=linux"}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	log.Info("beoclient stage 2: node root")
	raiseFileLimit(log)
	if err := installModprobe(nodefs.Binary); err != nil {
		log.Warn("the kernel's module helper", "err", err)
	}
	warmEntropy()
	xidsFromInsecureRandom(log)
	p, err := cfg.params()
	if err != nil {
		return err
	}
	preloaded := make(chan struct{})
	if mods := p.ModuleList(); len(mods) > 0 {
		// What the node's fstab needs, loaded while the node gets its
		// lease and rootfs and connects, not after the master asks.
		go func() {
			defer close(preloaded)
			preload(log, mods)
		}()
	} else {
		close(preloaded)
	}
	reaper := NewReaper(log)
	defer reaper.Stop()
	go signals(ctx, log, cfg.Power)

	l, err := network(ctx, log)
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	if !p.Master.IsValid() {
		// No beo.master=: the DHCP server is the master.
		if a, ok := netip.AddrFromSlice(l.server.To4()); ok && l.server != nil && !a.IsUnspecified() {
			p.Master = a
			log.Warn("no beo.master= on the kernel command line; using the DHCP server", "master", a)
		} else {
			return errors.New("no beo.master= on the kernel command line and no DHCP server identifier")
		}
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer null.Close()
	sv := &supervisor{log: log, reaper: reaper, binary: nodefs.Binary, env: env,
		stdin: null, stdout: cfg.Console, params: p, running: map[string]*os.Process{}}
	defer sv.wait()
	for _, s := range cfg.Services {
		if s.Early {
			sv.run(ctx, s)
		}
	}
	url := "http://" + net.JoinHostPort(p.Master.String(), strconv.Itoa(int(p.HTTP))) + p.Rootfs
	start := time.Now()
	b, err := fetch(ctx, log, &http.Client{}, url)
	if err != nil {
		return err
	}
	n, err := unpack(b, "/", []string{nodefs.Binary})
	if err != nil {
		return err
	}
	log.Info("rootfs unpacked", "url", url, "bytes", len(b), "members", n, "took", time.Since(start).Round(time.Millisecond))
	if err := writeHostname("/"); err != nil {
		log.Warn("/etc/hostname", "err", err)
	}
	for _, s := range cfg.Services {
		if !s.Early {
			sv.run(ctx, s)
		}
	}
	// The wall clock, once: the kernel stamps the record with its
	// uptime, the services' own logs carry the wall clock; this ties
	// the two together.
	log.Info(ReadyMarker, "master", p.Master, "iface", l.iface, "addr", l.addr, "clock", time.Now().UTC().Format(time.RFC3339Nano))
	go func() {
		<-preloaded // one background loader at a time: the fstab's first
		loadRest(log, LaterModules, "/proc/modules")
	}()
	<-ctx.Done()
	return nil
}

// missing drops the mount points that already are mount points (stage
// 1 moved them into the node root).
func missing(ms []mountPoint) []mountPoint {
	var out []mountPoint
	for _, m := range ms {
		if !isMountPoint(m.target) {
			out = append(out, m)
		}
	}
	return out
}

func isMountPoint(p string) bool {
	var st, parent unix.Stat_t
	if unix.Stat(p, &st) != nil || unix.Stat(filepath.Dir(p), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}

// signals: SIGTERM, SIGINT and SIGHUP would end a Go program, and the
// kernel panics when PID 1 exits, so they are logged and ignored.
// SIGUSR1 halts and SIGUSR2 powers off, as with busybox init.
func signals(ctx context.Context, log *slog.Logger, power func(string) error) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-ch:
			action := map[os.Signal]string{syscall.SIGUSR1: "halt", syscall.SIGUSR2: "pwroff"}[s]
			if action == "" {
				log.Info("signal ignored", "signal", s)
				continue
			}
			log.Warn("power action by signal", "signal", s, "action", action)
			if err := power(action); err != nil {
				log.Error("power", "err", err)
			}
		}
	}
}

// FatalDelay is how long Fatal leaves a boot error on the console (and
// for log forwarding) before rebooting.
const FatalDelay = 10 * time.Second

// Fatal handles a boot that cannot go on: it logs err, waits FatalDelay
// and reboots — a diskless node retries from the network. If the reboot
// fails it blocks forever, since PID 1 must never exit.
func Fatal(log *slog.Logger, err error, power func(string) error) {
	if power == nil {
		power = Power
	}
	log.Error("boot failed; rebooting", "err", err, "in", FatalDelay)
	time.Sleep(FatalDelay)
	if err := power("reboot"); err != nil {
		log.Error("reboot failed; halted", "err", err)
	}
	select {}
}

// writeHostname writes the kernel's host name (the node's name, from its
// DHCP lease) to root/etc/hostname, as a node's hostname(1) and
// programs reading the file expect.
func writeHostname(root string) error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return err
	}
	name := unix.ByteSliceToString(u.Nodename[:])
	if name == "" || name == "(none)" {
		return nil
	}
	return os.WriteFile(filepath.Join(root, "etc/hostname"), []byte(name+"\n"), 0o644)
}
