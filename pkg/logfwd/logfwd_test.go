package logfwd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseKmsg(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Kmsg
		wantErr bool
	}{
		{"6,339,5140900,-;NET: Registered protocol family 10\n", Kmsg{Priority: 6, Seq: 339, Since: 5140900 * time.Microsecond, Text: "NET: Registered protocol family 10"}, false},
		{"7,160,424069,-,caller=T1;pci_root PNP0A03:00: host bridge window\n SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A03:00\n", Kmsg{Priority: 7, Seq: 160, Since: 424069 * time.Microsecond, Text: "pci_root PNP0A03:00: host bridge window"}, false},
		{"30,5,1,c;systemd[1]: x", Kmsg{Priority: 30, Seq: 5, Since: time.Microsecond, Cont: true, Text: "systemd[1]: x"}, false},
		{"6,1,2;no flags", Kmsg{}, true},
		{"no header at all", Kmsg{}, true},
		{"192,1,2,-;bad pri", Kmsg{}, true},
		{"x,1,2,-;bad", Kmsg{}, true},
		{"6,1,-2,-;neg", Kmsg{}, true},
		{"6,1,99999999999999999999,-;big", Kmsg{}, true},
	} {
		got, err := ParseKmsg([]byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err %v, wantErr %v", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && got != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func FuzzParseKmsg(f *testing.F) {
	f.Add([]byte("6,339,5140900,-;NET: Registered protocol family 10\n"))
	f.Add([]byte("7,160,424069,-,caller=T1;text\n KEY=V\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKmsg(b)
		if err != nil {
			return
		}
		if k.Priority < 0 || k.Priority > 191 || k.Since < 0 || strings.Contains(k.Text, "\n") {
			t.Fatalf("accepted %+v", k)
		}
		m := k.message(time.Unix(0, 0))
		if len(m.Format(true)) > MaxPacket {
			t.Fatalf("packet too long")
		}
	})
}

func TestFormat(t *testing.T) {
	ts := time.Date(2026, 3, 5, 7, 8, 9, 0, time.UTC)
	m := Message{Priority: 6, Time: ts, Host: "n4", Tag: "kernel", Text: "eth0: link up"}
	if got, want := string(m.Format(false)), "<6>n4 kernel: eth0: link up"; got != want {
		t.Errorf("default: got %q, want %q", got, want)
	}
	if got, want := string(m.Format(true)), "<6>Mar  5 07:08:09 n4 kernel: eth0: link up"; got != want {
		t.Errorf("legacy: got %q, want %q", got, want)
	}
	long := Message{Priority: 14, Host: "n4", Tag: "x", Text: strings.Repeat("é", 1000)}
	p := long.Format(false)
	if len(p) > MaxPacket || !strings.HasPrefix(string(p), "<14>n4 x: é") || strings.ToValidUTF8(string(p), "?") != string(p) {
		t.Errorf("long message: %d bytes, valid UTF-8 %v", len(p), strings.ToValidUTF8(string(p), "?") == string(p))
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Message
		stamped bool
		wantErr bool
	}{
		{"<6>n4 kernel: eth0: link up", Message{Priority: 6, Host: "n4", Tag: "kernel", Text: "eth0: link up"}, false, false},
		{"<6>.4 kernel: x", Message{Priority: 6, Host: ".4", Tag: "kernel", Text: "x"}, false, false},
		{"<6>10.99.0.104 kernel: early", Message{Priority: 6, Host: "10.99.0.104", Tag: "kernel", Text: "early"}, false, false},
		{"<6>Mar  5 07:08:09 n4 kernel: legacy", Message{Priority: 6, Host: "n4", Tag: "kernel", Text: "legacy"}, true, false},
		{"<13>Mar  5 07:08:09 alice[812]: from glibc\n", Message{Priority: 13, Tag: "alice[812]", Text: "from glibc"}, true, false},
		{"<0>n4 kernel: emerg", Message{Priority: 0, Host: "n4", Tag: "kernel", Text: "emerg"}, false, false},
		{"garbage", Message{}, false, true},
		{"<192>n4 x: y", Message{}, false, true},
		{"<01>n4 x: y", Message{}, false, true},
		{"<-1>n4 x: y", Message{}, false, true},
		{"<>", Message{}, false, true},
		{"", Message{}, false, true},
	} {
		got, err := Parse([]byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err %v, wantErr %v", tc.in, err, tc.wantErr)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrNotSyslog) {
				t.Errorf("%q: err %v is not ErrNotSyslog", tc.in, err)
			}
			continue
		}
		if got.Time.IsZero() == tc.stamped {
			t.Errorf("%q: time %v, want stamped=%v", tc.in, got.Time, tc.stamped)
		}
		got.Time = time.Time{}
		if got != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
	if got := ParseLocal([]byte("no pri at all")); got.Priority != 13 || got.Text != "no pri at all" {
		t.Errorf("ParseLocal without PRI: got %+v", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"<6>n4 kernel: x", "<13>Mar  5 07:08:09 a[1]: b", "<0>", "<191>Jan 01 00:00:00 h t: m\nm"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		if m.Priority < 0 || m.Priority > 191 {
			t.Fatalf("priority %d", m.Priority)
		}
		r := &Receiver{}
		line := r.Line(netip.MustParseAddr("10.0.0.1"), m, time.Unix(1e9, 0))
		if strings.Count(string(line), "\n") != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("receiver line %q is not one line", line)
		}
	})
}

// records is a fake /dev/kmsg: one record per Read, then it blocks until
// closed.
type records struct {
	recs   []string
	closed chan struct{}
}

func (r *records) Read(b []byte) (int, error) {
	if len(r.recs) == 0 {
		<-r.closed
		return 0, io.EOF
	}
	n := copy(b, r.recs[0])
	r.recs = r.recs[1:]
	return n, nil
}

func (r *records) Close() error {
	select {
	case <-r.closed:
	default:
		close(r.closed)
	}
	return nil
}

func waitFor(t *testing.T, path string, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(string(b), w)
		}
		if ok {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never held %q; it holds:\n%s", path, want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestForwardToReceiver(t *testing.T) {
	dir := t.TempDir()
	pc, err := ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rcv := &Receiver{Dir: dir, Node: func(a netip.Addr) (int, bool) {
		return 2, a == netip.MustParseAddr("127.0.0.12")
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdone := make(chan error, 1)
	go func() { rdone <- rcv.Serve(ctx, pc) }()

	conn, err := (&net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.0.0.12")}}).Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	var host atomic.Value
	host.Store("(none)") // early boot: no host name yet
	fw := &Forwarder{Conn: conn, Host: func() string { return host.Load().(string) }}
	kmsg := &records{recs: []string{
		"6,1,100,-;Linux version 6.1 early boot\n",
		"not a record\n",
		"4,2,200,-;e1000: eth0 NIC Link is Up\n",
	}, closed: make(chan struct{})}
	kdone := make(chan error, 1)
	go func() { kdone <- fw.Kmsg(ctx, kmsg) }()

	devlog := filepath.Join(t.TempDir(), "log")
	lpc, err := ListenDevLog(devlog)
	if err != nil {
		t.Fatal(err)
	}
	ddone := make(chan error, 1)
	go func() { ddone <- fw.ServeDevLog(ctx, lpc) }()

	file := filepath.Join(dir, "messages.2")
	got := waitFor(t, file, "127.0.0.12 kernel: Linux version 6.1 early boot\n", "127.0.0.12 kernel: e1000: eth0 NIC Link is Up\n")
	if strings.Contains(got, "not a record") {
		t.Errorf("bad kmsg record forwarded:\n%s", got)
	}
	host.Store("n2")
	cl, err := net.Dial("unixgram", devlog)
	if err != nil {
		t.Fatal(err)
	}
	cl.Write([]byte("<86>Mar  5 07:08:09 sshd[412]: Accepted publickey for alice"))
	cl.Write([]byte("<13>Mar  5 07:08:10 evil: line\nforged 1.2.3.4 root: x"))
	cl.Close()
	got = waitFor(t, file, " n2 sshd[412]: Accepted publickey for alice\n", " n2 evil: line#012forged")
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if _, err := time.Parse(TimeFormat, strings.Fields(l)[0]); err != nil {
			t.Errorf("line %q: %v", l, err)
		}
	}
	// Another sender's messages go to messages.other; one without a
	// <PRI> is kept as user.notice text (RFC 3164 §4.3.3), control
	// characters escaped, as is a program's colour code; RFC 5424 is read.
	other, _ := net.Dial("udp", pc.LocalAddr().String())
	other.Write([]byte("<14>sw0 switch: port 3 up"))
	other.Write([]byte("\x00\x01garbage"))
	other.Write([]byte("<11>sw0 app: \x1b[31mred\x1b[0m"))
	other.Write([]byte("<13>1 2026-12-08T03:23:06.398270+00:00 sw1 r5 77 - [timeQuality tzKnown=\"1\"] \ufeffrfc5424 msg"))
	other.Close()
	waitFor(t, filepath.Join(dir, "messages.other"), " sw0 switch: port 3 up\n", " #000#001garbage\n",
		" sw0 app: #033[31mred#033[0m\n", " sw1 r5[77]: rfc5424 msg\n")

	cancel()
	for name, ch := range map[string]chan error{"receiver": rdone, "kmsg": kdone, "devlog": ddone} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s did not stop", name)
		}
	}
}

// TestKmsgRetry: records read while nothing listens are not lost; they
// arrive once the receiver is up.
func TestKmsgRetry(t *testing.T) {
	// Reserve a port, then close it so sends are refused.
	pc0, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc0.LocalAddr().String()
	pc0.Close()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cc := &countConn{Conn: conn}
	fw := &Forwarder{Conn: cc, Host: func() string { return "n7" }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	recs := &records{closed: make(chan struct{})}
	for i := range 5 {
		recs.recs = append(recs.recs, "6,"+string(rune('0'+i))+",1,-;msg "+string(rune('0'+i))+"\n")
	}
	kdone := make(chan error, 1)
	go func() { kdone <- fw.Kmsg(ctx, recs) }()
	deadline := time.Now().Add(5 * time.Second)
	for cc.errs.Load() < 2 { // sends were refused
		if time.Now().After(deadline) {
			t.Fatalf("sends never refused")
		}
		time.Sleep(10 * time.Millisecond)
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Skipf("port taken meanwhile: %v", err)
	}
	dir := t.TempDir()
	rcv := &Receiver{Dir: dir}
	go rcv.Serve(ctx, pc)
	waitFor(t, filepath.Join(dir, "messages.other"), "n7 kernel: msg 0\n", "n7 kernel: msg 4\n")
	cancel()
	select {
	case <-kdone:
	case <-time.After(5 * time.Second):
		t.Error("Kmsg did not stop")
	}
}

// countConn counts failed writes.
type countConn struct {
	net.Conn
	errs atomic.Int32
}

func (c *countConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil {
		c.errs.Add(1)
	}
	return n, err
}

func TestListenUDPBusy(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := ListenUDP(pc.LocalAddr().String()); !errors.Is(err, ErrSyslogListening) {
		t.Errorf("got %v, want ErrSyslogListening", err)
	}
}

func TestLineYear(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 0, 30, 0, time.UTC)
	m := Message{Time: time.Date(0, 12, 31, 23, 59, 59, 0, time.UTC), Host: "n1", Text: "x"}
	if got, want := string((&Receiver{}).Line(netip.Addr{}, m, now)), "2026-12-31T23:59:59.000000+00:00 n1 x\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestReceiverMaxFile: a sender's file never grows past MaxFile; the
// lines before a move are in FILE.1 (one generation), and the new file
// starts by saying so. A flood costs at most twice MaxFile.
func TestReceiverMaxFile(t *testing.T) {
	dir := t.TempDir()
	r := &Receiver{Dir: dir, MaxFile: 4096, Node: func(netip.Addr) (int, bool) { return 3, true }}
	src := netip.MustParseAddr("10.0.0.3")
	for i := range 1000 {
		if err := r.Handle(src, fmt.Appendf(nil, "<13>n3 flood: message %04d", i)); err != nil {
			t.Fatal(err)
		}
	}
	cur, err := os.ReadFile(filepath.Join(dir, "messages.3"))
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(filepath.Join(dir, "messages.3.1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cur) > 4096 || len(old) > 4096 {
		t.Errorf("messages.3 %d bytes, messages.3.1 %d: want each at most MaxFile (4096)", len(cur), len(old))
	}
	lines := strings.Split(strings.TrimSuffix(string(cur), "\n"), "\n")
	if !strings.Contains(lines[0], " n3 beo-logs: this file reached 4096 bytes: the lines before this one are in messages.3.1") {
		t.Errorf("messages.3 starts with %q, want the note of the move", lines[0])
	}
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, "flood: message 0999") {
		t.Errorf("messages.3 ends with %q, want the last message", last)
	}
	// Nothing lost between the two files: the old one ends where the new
	// one's messages begin.
	oldLines := strings.Split(strings.TrimSuffix(string(old), "\n"), "\n")
	var a, b int
	fmt.Sscanf(oldLines[len(oldLines)-1][strings.LastIndex(oldLines[len(oldLines)-1], " ")+1:], "%d", &a)
	fmt.Sscanf(lines[1][strings.LastIndex(lines[1], " ")+1:], "%d", &b)
	if b != a+1 {
		t.Errorf("messages.3.1 ends at message %d, messages.3 goes on at %d", a, b)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 2 {
		t.Errorf("files %v, want messages.3 and messages.3.1", files)
	}
}
