// Package lab implements `beo lab`: a real beo cluster on this machine —
// `beo master` in a private network namespace and N QEMU machines that
// PXE-boot from it (see pkg/lab). Nothing is configured by hand: the
// config is the built-in default with one node per machine, written
// into a private state directory together with the keys, logs and boot
// files; no file of the host's /etc or /var is read or written, and no
// host network interface is touched.
//
//	beo lab [-n NODES] [-masters M] [-keep] [-dir DIR] [-accel kvm|tcg] [-mem SIZE] [-wait DURATION] [-timeline] [-fstab default|none|FILE] [-qemu ARGS] [-user NAME] [-v] [command [args...]]
//	beo lab -enter DIR [-user NAME] [command [args...]]
//
// With a command, lab waits until every node is up and runs the command
// where a head-node user is: in the master's network namespace (so what
// it starts is reachable from the nodes, as mpirun must be), with the
// cluster's names resolvable (n0, .0, master: /etc/hosts is, for the
// command alone, the host's plus the cluster's block), as -user NAME if
// given (default: the caller), with BEO_SOCKET pointing at the lab's
// master, BEOSTAT_URL at its dashboard, the MPI launchers' settings
// (DIR/mpi/env.sh, pkg/mpi) and the applet symlinks (bpsh, bpstat, …)
// first on PATH — so `beo lab -n 3 sh -c 'bpstat; bpsh -a -p uname -a;
// beostat -b'` and `beo lab -n 3 -user alice mpirun -np 4 ./a.out` just
// work — then stops everything and exits with the command's status.
// Without one it prints what a second shell needs and runs until
// interrupted: the variables for a shell in the host's namespace (the
// dashboard reached through a forwarded loopback port), and `beo lab
// -enter DIR` for one in the master's namespace. The state directory is
// open to every user (0755; the keys stay 0700), so any user can use the
// lab's socket and links, as every user of a head node can. Every process it started is stopped by pid and the
// namespace deleted on the way out; -keep keeps the state directory (serial
// consoles, master and node logs) and prints where it is.
//
// The nodes' /etc/beowulf/fstab (-fstab) is by default the lab's own
// (pkg/lab DefaultFstab): DIR/home, a directory of the lab's open to
// everyone (1777), is every node's /home over NFS from the master
// (nfs-ganesha, run by beo master in the namespace), so what a job on a
// node writes under /home is on the master at once, in $BEO_LAB_HOME:
//
//	beo lab -n 2 sh -c 'bpsh 0 sh -c "echo hi > /home/x"; cat $BEO_LAB_HOME/x'
//
// A root job writes there as nobody (root is squashed); with -user NAME
// jobs write as NAME. It is the lab's directory, not the host's /home:
// the lab writes nothing outside its state directory and keeps the
// host's users' files out of the VMs' reach. Without nfs-ganesha the
// nodes mount nothing (the lab says so). -fstab none gives them no
// fstab; -fstab FILE uses FILE (fstab(5) lines, $MASTER for the master).
//
// -masters M (2 to 4) adds masters at 10.99.0.2 … on the cluster network,
// each in a namespace of its own (pkg/lab Peer), sharing the config —
// which gets `masterorder -` and their addresses, 10.99.0.1 first — the
// keys and the fstab, and each with its own NFS server, socket
// (DIR/master-I/bpmaster.sock) and logs: the nodes are up on the first
// and [up] on the others, and re-parent to the next one a minute after
// the first stops (pkg/config, "Multiple masters").
//
// It needs root and qemu-system-x86_64; without them it says so (`make demo`
// falls back to `beo sim`).
package lab

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/bproc"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/lab"
)

const usage = "usage: beo lab [-n NODES] [-masters M] [-keep] [-dir DIR] [-accel kvm|tcg] [-mem SIZE] [-wait DURATION] [-timeline] [-fstab default|none|FILE] [-qemu ARGS] [-user NAME] [-v] [command [args...]]\n       beo lab -enter DIR [-user NAME] [command [args...]]"

// Run is the lab applet.
func Run(ctx context.Context, args []string, stdio applets.IO) (err error) {
	fs := applets.NewFlagSet("lab", usage, stdio.Err)
	n := fs.Int("n", 2, "number of QEMU nodes (each needs ~250 MB of RAM)")
	masters := fs.Int("masters", 1, "number of masters, 1 to 4 (masterorder -: 10.99.0.1 first, then 10.99.0.2 …)")
	keep := fs.Bool("keep", false, "keep the state directory (logs, serial consoles) and print its path")
	dir := fs.String("dir", "", "state directory (default: a new temporary directory)")
	accel := fs.String("accel", "", "QEMU accelerator kvm or tcg (default: probe KVM, else tcg; $"+lab.AccelEnv+")")
	mem := fs.String("mem", "256M", "memory per node")
	wait := fs.Duration("wait", 5*time.Minute, "how long to wait for every node to be up")
	verbose := fs.Bool("v", false, "log the lab's steps to stderr")
	timeline := fs.Bool("timeline", false, "print each node's boot timeline (qemu → DHCP → iPXE script → kernel → /init → bpslave → up) to stderr")
	userName := fs.String("user", "", "run the command as this user (default: the caller)")
	qemuArgs := fs.String("qemu", "", "more QEMU arguments for every node, e.g. \"-icount shift=2,sleep=on\" (the guest's clock then counts its instructions)")
	fstabArg := fs.String("fstab", "default", "the nodes' fstab: default (the lab's DIR/home as every node's /home over NFS), none, or a file")
	enterDir := fs.String("enter", "", "run the command (default: a shell) in the master's namespace of the running lab whose state directory is DIR")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	who, err := lookupUser(*userName)
	if err != nil {
		return &applets.Usage{Line: usage, Msg: err.Error()}
	}
	if *enterDir != "" {
		return enter(ctx, *enterDir, who, fs.Args(), stdio)
	}
	if *n < 1 || *n > 64 {
		return &applets.Usage{Line: usage, Msg: fmt.Sprintf("-n %d: want 1 to 64", *n)}
	}
	if *masters < 1 || *masters > 4 {
		return &applets.Usage{Line: usage, Msg: fmt.Sprintf("-masters %d: want 1 to 4", *masters)}
	}
	if *accel != "" && *accel != "kvm" && *accel != "tcg" {
		return &applets.Usage{Line: usage, Msg: fmt.Sprintf("-accel %q: want kvm or tcg", *accel)}
	}
	if err := lab.Check(true); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	d := *dir
	if d == "" {
		if d, err = os.MkdirTemp("", "beo-lab-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("-dir: %w", err)
	}
	defer func() {
		if *keep {
			fmt.Fprintf(stdio.Err, "lab: state kept in %s\n", d)
		} else if *dir == "" {
			os.RemoveAll(d)
		}
	}()
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(stdio.Err, nil))
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The lab runs a copy of this binary in its state directory, which
	// every user can reach: the links, beorsh and the master are all
	// it, wherever (behind whatever 0700 directory) this one lives.
	if self, err = shareExe(self, d); err != nil {
		return err
	}
	fstab, err := labFstab(*fstabArg, d, stdio.Err)
	if err != nil {
		return err
	}
	start := time.Now()
	fmt.Fprintf(stdio.Err, "lab: starting beo master and %s (state in %s)\n", applets.Plural(*n, "QEMU node"), d)
	c, err := lab.StartCluster(ctx, lab.ClusterOptions{Exe: self, Dir: d, Listed: *n, Accel: *accel, Memory: *mem, Boot: true, Log: log, Fstab: fstab,
		QEMUArgs: strings.Fields(*qemuArgs), Config: masterOrder(*masters)})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	var others []string // the other masters' sockets
	for i := 1; i < *masters; i++ {
		p, err := c.Lab.Peer(ctx, "m"+strconv.Itoa(i), netip.PrefixFrom(labMaster(i), lab.DefaultAddr.Bits()))
		if err != nil {
			return err
		}
		_, sock, err := c.StartMaster(ctx, p, "master-"+strconv.Itoa(i))
		if err != nil {
			return err
		}
		others = append(others, sock)
	}
	fmt.Fprintf(stdio.Err, "lab: namespace %s, accelerator %s (%s)\n", c.Lab.NS, c.Accel, c.AccelWhy)
	if err := os.WriteFile(filepath.Join(d, lab.NamespaceFile), []byte(c.Lab.NS+"\n"), 0o644); err != nil {
		return err
	}
	nodes := make([]int, *n)
	for i := range nodes {
		nodes[i] = i
	}
	wctx, cancel := context.WithTimeout(ctx, *wait)
	err = c.WaitUp(wctx, nodes...)
	cancel()
	if err != nil {
		return err
	}
	// Power-on is the first QEMU's start: the time before it is the
	// master's (boot package, KVM probe), not the nodes'.
	up, on := time.Now(), c.Machines[0].Started
	fmt.Fprintf(stdio.Err, "lab: %s up %v after power-on (%v after start)\n", applets.Plural(*n, "node"),
		up.Sub(on).Round(100*time.Millisecond), up.Sub(start).Round(100*time.Millisecond))
	if *timeline {
		for _, m := range c.Machines {
			fmt.Fprintf(stdio.Err, "lab: %s (%s) boot timeline:\n%s", m.VM.Name, m.VM.MAC, lab.FormatTimeline(c.Timeline(m)))
		}
	}
	bin := filepath.Join(d, "bin")
	if err := applets.Links(ctx, self, bin); err != nil {
		return err
	}
	// The dashboard listens on the namespace's loopback: forward a port
	// of the host's to it, for beostat ($BEOSTAT_URL) and a browser.
	dash, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fctx, stopForward := context.WithCancel(ctx)
	forwarded := make(chan error, 1)
	go func() { forwarded <- c.Lab.Forward(fctx, dash, dashboard.DefaultAddr) }()
	defer func() {
		stopForward()
		<-forwarded
	}()
	statsURL := "http://" + dash.Addr().String()
	waitStats(ctx, statsURL, *n, 15*time.Second)
	vars := []string{bproc.SocketEnv + "=" + c.Socket, dashboard.URLEnv + "=" + statsURL}
	if _, err := c.Hosts(); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		home := ""
		if fstab != "" && *fstabArg == "default" {
			home = fmt.Sprintf("Every node's /home is %s here:\n  bpsh 0 sh -c 'echo hi > /home/x'; cat %s/x\n", lab.HomeDir(d), lab.HomeDir(d))
		}
		more := ""
		for i, sock := range others {
			more += fmt.Sprintf("Master %s (the nodes are [up] there): %s=%s bpstat\n", labMaster(i+1), bproc.SocketEnv, sock)
		}
		fmt.Fprintf(stdio.Out, "%s up. In another shell:\n  export %s %s PATH=%s:$PATH\n  bpstat; bpsh -a -p uname -r; beostat -b\n%s%s"+
			"A shell where the master is (mpirun, names n0 …), as any user:\n  sudo %s lab -enter %s [-user NAME]\nDashboard: %s/\nCtrl-C stops the cluster.\n",
			applets.Plural(*n, "node"), vars[0], vars[1], bin, home, more, self, d, statsURL)
		<-ctx.Done()
		return nil
	}
	cmd, err := c.UserCommand(ctx, who, "", userEnv(who, d), fs.Args())
	if err != nil {
		return err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.In, stdio.Out, stdio.Err
	return applets.CommandExit(cmd.Run())
}

// labFstab is -fstab's fstab text for a lab in dir ("" for none),
// telling w what the nodes will mount.
func labFstab(arg, dir string, w io.Writer) (string, error) {
	switch arg {
	case "none":
		return "", nil
	case "default":
		text, why, err := lab.DefaultFstab(dir)
		if err != nil {
			return "", err
		}
		if text == "" {
			fmt.Fprintf(w, "lab: %s: nodes mount nothing from the master\n", why)
			return "", nil
		}
		fmt.Fprintf(w, "lab: every node's /home is %s on the master (NFS; $%s)\n", lab.HomeDir(dir), lab.HomeEnv)
		return text, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return "", fmt.Errorf("-fstab: %w", err)
	}
	if len(b) == 0 {
		return "# empty (beo lab -fstab " + arg + ")\n", nil
	}
	return string(b), nil
}

// enter is `beo lab -enter DIR`: argv (default: the user's shell) in the
// master's namespace of the running lab whose state directory is dir.
func enter(ctx context.Context, dir string, who lab.User, argv []string, stdio applets.IO) error {
	if err := lab.Check(false); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	ns, err := os.ReadFile(filepath.Join(dir, lab.NamespaceFile))
	if err != nil {
		return fmt.Errorf("%s: no running lab there: %w", dir, err)
	}
	l := &lab.Lab{NS: strings.TrimSpace(string(ns))}
	if _, err := os.Stat(filepath.Join(lab.NetnsDir, l.NS)); err != nil {
		return fmt.Errorf("lab namespace %s is gone (the lab stopped?): %w", l.NS, err)
	}
	env := userEnv(who, dir)
	if len(argv) == 0 {
		argv = []string{"/bin/sh"}
		for _, e := range env {
			if sh, ok := strings.CutPrefix(e, "SHELL="); ok && sh != "" && !strings.HasSuffix(sh, "nologin") && !strings.HasSuffix(sh, "false") {
				argv = []string{sh}
			}
		}
	}
	cmd := l.UserCommand(ctx, self, filepath.Join(dir, "hosts"), who, "", env, argv)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.In, stdio.Out, stdio.Err
	return applets.CommandExit(cmd.Run())
}

// shareExe copies the binary at self to dir/beo (mode 0755) and returns
// the copy's path.
func shareExe(self, dir string) (string, error) {
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	in, err := os.Open(self)
	if err != nil {
		return "", err
	}
	defer in.Close()
	p := filepath.Join(dir, "beo")
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	return p, out.Close()
}

// lookupUser is -user NAME (a name or a uid); "" is the caller.
func lookupUser(name string) (lab.User, error) {
	if name == "" {
		return lab.User{}, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.LookupId(name); err != nil {
			return lab.User{}, fmt.Errorf("-user %s: no such user", name)
		}
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	who := lab.User{UID: uint32(uid), GID: uint32(gid), Set: true}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				who.Groups = append(who.Groups, uint32(n))
			}
		}
	}
	return who, nil
}

// userEnv is the environment of a user's command in the lab in dir:
// the caller's (for -user, a login's: HOME, USER, LOGNAME, SHELL from
// the password file, and the caller's PATH, TERM and locale), the lab's
// socket, dashboard and MPI settings, and the links first on PATH.
// labMaster is master i's address: 10.99.0.1 (the lab's) + i.
func labMaster(i int) netip.Addr {
	a := lab.DefaultAddr.Addr().As4()
	a[3] += byte(i)
	return netip.AddrFrom4(a)
}

// masterOrder is the config lines -masters m adds: none for one master.
func masterOrder(m int) string {
	masters := make([]netip.Addr, m)
	for i := range masters {
		masters[i] = labMaster(i)
	}
	return config.MasterOrderLine(masters...)
}

func userEnv(who lab.User, dir string) []string {
	var env []string
	path := os.Getenv("PATH")
	if !who.Set {
		env = os.Environ()
	} else {
		if u, err := user.LookupId(strconv.FormatUint(uint64(who.UID), 10)); err == nil {
			env = append(env, "HOME="+u.HomeDir, "USER="+u.Username, "LOGNAME="+u.Username)
		}
		if sh := loginShell(who.UID); sh != "" {
			env = append(env, "SHELL="+sh)
		}
		for _, e := range os.Environ() {
			if k, _, _ := strings.Cut(e, "="); k == "TERM" || k == "LANG" || k == "TZ" || strings.HasPrefix(k, "LC_") {
				env = append(env, e)
			}
		}
	}
	env = append(env, lab.UserEnv(dir)...)
	return append(env, "PATH="+filepath.Join(dir, "bin")+string(os.PathListSeparator)+path)
}

// loginShell reads uid's shell from /etc/passwd ("" if not found).
func loginShell(uid uint32) string {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[2] == strconv.FormatUint(uint64(uid), 10) {
			return f[6]
		}
	}
	return ""
}

// waitStats waits, at most d, until n nodes have sent stats to the
// master's dashboard at url: a node's sendstats starts with its bpslave,
// so its first sample may trail its "up" a little. Whatever is there
// after d, the lab goes on.
func waitStats(ctx context.Context, url string, n int, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		if snap, err := dashboard.Fetch(ctx, nil, url, ""); err == nil {
			got := 0
			for _, nd := range snap.Nodes {
				if nd.Stats != nil {
					got++
				}
			}
			if got >= n {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}
