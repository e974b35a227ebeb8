package netns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// logsEnv is a master namespace (10.98.0.1) and a node namespace
// (10.98.0.104, node 4 of logsConfig) joined by a veth pair.
type logsEnv struct {
	beo          string
	master, node *NS
	dir          string
}

const logsConfig = `nodes 8
iprange 10.98.0.100 10.98.0.107
nodename n%N
`

func logsSetup(t *testing.T) *logsEnv {
	t.Helper()
	Require(t, "logger")
	if _, err := os.Stat("/dev/kmsg"); err != nil {
		t.Skip("logs suite: no /dev/kmsg")
	}
	e := &logsEnv{beo: Beo(t), master: Add(t, "beolm"), node: Add(t, "beoln"), dir: t.TempDir()}
	Veth(t, e.master, "m0", "10.98.0.1/24", e.node, "n0", "")
	e.node.Run(t, "ip", "addr", "add", "10.98.0.104/24", "dev", "n0")
	if err := os.WriteFile(filepath.Join(e.dir, "config"), []byte(logsConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// logsKmsg writes a line into the kernel log (root only).
func logsKmsg(t *testing.T, text string) {
	t.Helper()
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("logs suite: cannot write /dev/kmsg: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteString("<6>" + text); err != nil {
		t.Fatalf("write /dev/kmsg: %v", err)
	}
}

func logsWaitFile(t *testing.T, path string, want ...string) string {
	t.Helper()
	var got string
	t.Cleanup(func() {
		if t.Failed() {
			ents, _ := os.ReadDir(filepath.Dir(path))
			for _, e := range ents {
				b, _ := os.ReadFile(filepath.Join(filepath.Dir(path), e.Name()))
				t.Logf("%s: %d bytes, tail %q", e.Name(), len(b), b[max(0, len(b)-300):])
			}
		}
	})
	Eventually(t, 15*time.Second, fmt.Sprintf("%s to hold %q", path, want), func() bool {
		b, _ := os.ReadFile(path)
		got = string(b)
		for _, w := range want {
			if !strings.Contains(got, w) {
				return false
			}
		}
		return true
	})
	return got
}

// logsForwarder starts beoklogd in the node namespace.
func (e *logsEnv) logsForwarder(t *testing.T, devlog string, extra ...string) *Daemon {
	args := append([]string{e.beo, "beoklogd", "-server", "10.98.0.1", "-hostname", "n4", "-devlog", devlog, "-cmdline", "/dev/null"}, extra...)
	return Start(t, e.node.Command(t.Context(), args...))
}

// TestLogsRsyslog: a node's kernel messages — one from before beoklogd
// started, as at boot, and one after — and its programs' syslog reach a
// real rsyslogd on the master, with the node's identity, stamped by the
// master (default) or by the node (-legacy).
func TestLogsRsyslog(t *testing.T) {
	Require(t, "rsyslogd", "ss")
	e := logsSetup(t)
	out, raw := filepath.Join(e.dir, "messages"), filepath.Join(e.dir, "raw")
	conf := fmt.Sprintf(`module(load="imudp")
input(type="imudp" port="514" address="10.98.0.1")
global(workDirectory=%q)
template(name="raw" type="string" string="%%HOSTNAME%% %%syslogtag%% raw=%%rawmsg%%\n")
*.* action(type="omfile" file=%q)
*.* action(type="omfile" file=%q template="raw")
`, e.dir, out, raw)
	must(t, os.WriteFile(filepath.Join(e.dir, "rsyslog.conf"), []byte(conf), 0o644))
	Start(t, e.master.Command(t.Context(), "rsyslogd", "-n", "-f", filepath.Join(e.dir, "rsyslog.conf"), "-i", filepath.Join(e.dir, "rsyslog.pid")))
	Eventually(t, 10*time.Second, "rsyslogd listening on UDP 514", func() bool {
		o, _ := e.master.Command(t.Context(), "ss", "-Hunl", "sport", "=", ":514").Output()
		return strings.Contains(string(o), "10.98.0.1:514")
	})

	// With a syslog daemon on the port, beo's receiver stands aside.
	rcv := e.master.Command(t.Context(), e.beo, "beoklogd", "-receive", "-listen", "10.98.0.1:514", "-dir", e.dir, "-config", filepath.Join(e.dir, "config"))
	b, err := rcv.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "already listens") {
		t.Errorf("receiver beside rsyslogd: %v\n%s; want it to step aside", err, b)
	}

	tag := fmt.Sprintf("beo-logs-%d-%d", os.Getpid(), time.Now().UnixNano())
	logsKmsg(t, tag+" before beoklogd\n")
	devlog := filepath.Join(e.dir, "devlog")
	e.logsForwarder(t, devlog)
	logsKmsg(t, tag+" after beoklogd\n")
	Eventually(t, 10*time.Second, "beoklogd's /dev/log socket", func() bool {
		_, err := os.Stat(devlog)
		return err == nil
	})
	lg := exec.Command("logger", "-u", devlog, "-t", "alice", tag+" from a job")
	if b, err := lg.CombinedOutput(); err != nil {
		t.Fatalf("logger: %v\n%s", err, b)
	}
	got := logsWaitFile(t, out,
		" n4 kernel: "+tag+" before beoklogd\n",
		" n4 kernel: "+tag+" after beoklogd\n",
		" n4 alice: "+tag+" from a job\n")
	// Default: no node timestamp on the wire; rsyslog stamps on receipt.
	rawText := logsWaitFile(t, raw, tag+" from a job")
	rawForm := regexp.MustCompile(`raw=<\d+>n4 (kernel|alice): ` + regexp.QuoteMeta(tag))
	for _, l := range strings.Split(rawText, "\n") {
		if strings.Contains(l, tag) && !rawForm.MatchString(l) {
			t.Errorf("raw message carries more than PRI HOSTNAME TAG: %q", l)
		}
	}
	year := fmt.Sprint(time.Now().Year())
	for _, l := range strings.Split(got, "\n") {
		if strings.Contains(l, tag) && !strings.HasPrefix(l, year) {
			t.Errorf("line not stamped by the master: %q", l)
		}
	}

	// legacy_syslog=1: the node's own timestamp travels.
	devlog2 := filepath.Join(e.dir, "devlog2")
	e.logsForwarder(t, devlog2, "-legacy", "-kmsg", "none")
	Eventually(t, 10*time.Second, "second /dev/log socket", func() bool {
		_, err := os.Stat(devlog2)
		return err == nil
	})
	if b, err := exec.Command("logger", "-u", devlog2, "-t", "bob", tag+" legacy").CombinedOutput(); err != nil {
		t.Fatalf("logger: %v\n%s", err, b)
	}
	rawText = logsWaitFile(t, raw, tag+" legacy")
	re := regexp.MustCompile(`raw=<13>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d n4 bob: ` + regexp.QuoteMeta(tag) + ` legacy`)
	if !re.MatchString(rawText) {
		t.Errorf("legacy message has no RFC 3164 timestamp:\n%s", rawText)
	}
}

// TestLogsReceiver: with no syslog daemon, beo's receiver files each
// node's messages under its number, survives garbage, and keeps going.
func TestLogsReceiver(t *testing.T) {
	Require(t, "bash")
	e := logsSetup(t)
	logdir := filepath.Join(e.dir, "beowulf")
	rcv := Start(t, e.master.Command(t.Context(), e.beo, "beoklogd", "-receive", "-listen", "10.98.0.1:514", "-dir", logdir, "-config", filepath.Join(e.dir, "config")))
	rcv.WaitLog(t, "receiving", 10*time.Second)

	tag := fmt.Sprintf("beo-recv-%d-%d", os.Getpid(), time.Now().UnixNano())
	logsKmsg(t, tag+" early\n")
	devlog := filepath.Join(e.dir, "devlog")
	e.logsForwarder(t, devlog)
	file := filepath.Join(logdir, "messages.4")
	logsWaitFile(t, file, " n4 kernel: "+tag+" early\n")

	// Garbage and forged lines from the node's address.
	e.node.Run(t, "bash", "-c", `printf '\x00\x01\xffjunk' > /dev/udp/10.98.0.1/514; printf '<999>x' > /dev/udp/10.98.0.1/514; printf '<13>n4 evil: a\nMar  1 00:00:00 n9 forged: b' > /dev/udp/10.98.0.1/514`)
	Eventually(t, 10*time.Second, "beoklogd's /dev/log socket", func() bool {
		_, err := os.Stat(devlog)
		return err == nil
	})
	if b, err := exec.Command("logger", "-u", devlog, "-t", "alice", tag+" later").CombinedOutput(); err != nil {
		t.Fatalf("logger: %v\n%s", err, b)
	}
	// (bash writes the forged text as a second datagram, without <PRI>:
	// kept as text, as RFC 3164 §4.3.3 has it, under the sender's address,
	// not the host it names; control characters escaped. One datagram
	// with a newline is escaped: see pkg/logfwd.)
	got := logsWaitFile(t, file, " n4 alice: "+tag+" later\n", " n4 evil: a\n",
		" 10.98.0.104 #000#001\xffjunk\n", " 10.98.0.104 Mar  1 00:00:00 n9 forged: b\n")
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == "n9" {
			t.Errorf("a forged host in the log: %q", l)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000000-07:00", strings.Fields(l)[0]); err != nil {
			t.Errorf("line %q: %v", l, err)
		}
	}
	if _, err := os.Stat(filepath.Join(logdir, "messages.other")); err == nil {
		t.Errorf("node messages filed as other")
	}
}
