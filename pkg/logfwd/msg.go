// Package logfwd carries a compute node's log to the master: beoklogd on
// the node reads the kernel's log (/dev/kmsg) and the node's syslog socket
// (/dev/log) and sends every message over UDP to the master's syslog (or
// to `syslog_server=`), in the BSD syslog format of RFC 3164; on the
// master, Receiver takes those datagrams when no syslog daemon listens and
// appends them to per-node files under /var/log/beowulf/.
//
// # Wire format (one UDP datagram per message, at most 1024 bytes)
//
//	<PRI>HOSTNAME TAG: MSG                      default
//	<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG      legacy_syslog=1
//
// PRI is facility*8+severity (kernel messages: facility 0, their own
// level). HOSTNAME is the node's identity: its host name, or — early in
// boot, before it has one ("(none)", "localhost") — its address on the
// cluster network, which the master maps to the node. TAG is "kernel" for
// kernel messages and the program's tag[pid] for syslog ones.
//
// By default no TIMESTAMP is sent. RFC 3164 §4.3.3 makes a receiver that
// gets a packet without one stamp it with the time of reception, and
// rsyslog does (and reads HOSTNAME and TAG as above — checked against
// rsyslogd 8.2302 in test/netns): the master's log then has one
// timestamp, from one clock, for every node. This is ClusterWare's "no
// double timestamp" behaviour. legacy_syslog=1 restores the old form
// carrying the node's own clock (for a kernel message: boot time plus the
// message's offset since boot).
//
// # Parsing
//
// Datagrams from /dev/log (glibc's syslog(3): `<PRI>Mmm dd hh:mm:ss
// TAG[PID]: MSG`, no hostname) and the receiver's input are parsed with
// github.com/leodido/go-syslog/v4's RFC 3164 machine, after the relay
// rules of RFC 3164 §4.3.3: no valid TIMESTAMP → the time of reception is
// inserted; on /dev/log a datagram without a valid PRI becomes the MSG of
// a <13> (user.notice) message. /dev/kmsg records are parsed by
// ParseKmsg: the format is the kernel's documented ABI
// (Documentation/ABI/testing/dev-kmsg) of one `prio,seq,usec,flags;text`
// record per read; the one library for it (euank/go-kmsg-parser, last
// released 2017) hard-codes the device path and owns its goroutine, so
// nothing here could be tested with it.
//
// # Receiver
//
// The master's syslog gets node messages when it listens on UDP 514
// (rsyslog with imudp). When nothing listens there (Debian's rsyslog does
// not by default), `beo master` binds the port itself and Receiver
// appends each message, one line per message, to
//
//	/var/log/beowulf/messages.N      node N (by the datagram's source address)
//	/var/log/beowulf/messages.other  any other sender
//
// in the form `2006-01-02T15:04:05.000000+00:00 HOSTNAME TAG: MSG`, the
// time being the message's own when it carries one, else the time of
// reception; control characters are written as #ooo (as rsyslog does), so
// no datagram can forge a line. A datagram without a valid <PRI> is kept
// as the text of a user.notice message (RFC 3164 §4.3.3), as rsyslog
// keeps it, rather than dropped. Files are opened for each message
// (O_APPEND), so
// log rotation needs no signal. A file that would grow past
// Receiver.MaxFile (32 MiB) is moved to FILE.1 first: a node flooding the
// receiver cannot fill the master's disk.
package logfwd

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"
)

// MaxPacket is RFC 3164's limit on a datagram.
const MaxPacket = 1024

// Message is one syslog message.
type Message struct {
	Priority int       // facility*8 + severity, 0–191
	Time     time.Time // the sender's timestamp; zero when it sent none
	Host     string    // HOSTNAME; may be empty in a parsed message
	Tag      string    // "kernel", "sshd[412]"; may be empty
	Text     string
}

// Format returns m as an RFC 3164 datagram, with m.Time as TIMESTAMP only
// when legacy is set (see the package doc), truncated to MaxPacket bytes
// at a UTF-8 boundary.
func (m Message) Format(legacy bool) []byte {
	var b bytes.Buffer
	b.WriteString("<" + strconv.Itoa(m.Priority) + ">")
	if legacy && !m.Time.IsZero() {
		b.WriteString(m.Time.Format(time.Stamp) + " ")
	}
	b.WriteString(m.Host + " ")
	if m.Tag != "" {
		b.WriteString(m.Tag + ": ")
	}
	b.WriteString(m.Text)
	out := b.Bytes()
	if len(out) > MaxPacket {
		out = out[:MaxPacket]
		for len(out) > 0 && !utf8.Valid(out[max(0, len(out)-utf8.UTFMax):]) {
			out = out[:len(out)-1]
		}
	}
	return out
}

// ErrNotSyslog is returned for input that is not a syslog message.
var ErrNotSyslog = errors.New("not a syslog message")

// Parse reads an RFC 3164 message, applying the relay rule for a missing
// TIMESTAMP (the Time of the result is then zero). Input without a valid
// <PRI> is ErrNotSyslog.
//
// Control characters other than newline (an escape sequence, a NUL) are
// written as #ooo first, as rsyslog does on reception: the RFC 3164
// machine refuses them, and a colour code in a program's message cost
// the whole message. A message in RFC 5424's form (`<PRI>1 TIMESTAMP
// HOST APP PROCID MSGID SD MSG`, logger --rfc5424) is read as one.
func Parse(b []byte) (Message, error) {
	b = escapeControls(bytes.TrimRight(b, "\n\x00"))
	pri, rest, ok := cutPRI(b)
	if !ok {
		return Message{}, fmt.Errorf("%w: no <PRI>", ErrNotSyslog)
	}
	if bytes.HasPrefix(rest, []byte("1 ")) {
		if m, err := parse5424(pri, b); err == nil {
			return m, nil
		}
	}
	p := rfc3164.NewParser(rfc3164.WithEmbeddedNewlines(), rfc3164.WithLenientDay())
	stamped := true
	sm, err := parse(p, b)
	if err != nil {
		// RFC 3164 §4.3.3: no valid TIMESTAMP; insert one and read on.
		stamped = false
		const stamp = "Jan  1 00:00:00 "
		sm, err = parse(p, append([]byte("<"+strconv.Itoa(pri)+">"+stamp), rest...))
		if err != nil {
			return Message{}, fmt.Errorf("%w: %v", ErrNotSyslog, err)
		}
	}
	m := Message{Priority: pri}
	if stamped && sm.Timestamp != nil {
		m.Time = *sm.Timestamp
	}
	if sm.Hostname != nil {
		m.Host = *sm.Hostname
	}
	if sm.Appname != nil {
		m.Tag = *sm.Appname
		if sm.ProcID != nil {
			m.Tag += "[" + *sm.ProcID + "]"
		}
	}
	if sm.Message != nil {
		m.Text = *sm.Message
	}
	return m, nil
}

// parse5424 reads an RFC 5424 message. Its structured data is left out,
// as rsyslog's traditional file format does.
func parse5424(pri int, b []byte) (Message, error) {
	sm, err := rfc5424.NewParser(rfc5424.WithBestEffort()).Parse(b)
	if err != nil {
		return Message{}, err
	}
	m5, ok := sm.(*rfc5424.SyslogMessage)
	if !ok || m5 == nil {
		return Message{}, errors.New("no message")
	}
	m := Message{Priority: pri}
	if m5.Timestamp != nil {
		m.Time = *m5.Timestamp
	}
	if m5.Hostname != nil {
		m.Host = *m5.Hostname
	}
	if m5.Appname != nil {
		m.Tag = *m5.Appname
		if m5.ProcID != nil {
			m.Tag += "[" + *m5.ProcID + "]"
		}
	}
	if m5.Message != nil {
		m.Text = strings.TrimPrefix(*m5.Message, "\ufeff") // RFC 5424's BOM
	}
	return m, nil
}

// escapeControls writes the control characters of b but newline as #ooo.
func escapeControls(b []byte) []byte {
	if !bytes.ContainsFunc(b, func(r rune) bool { return isControl(r) }) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for _, c := range b {
		if isControl(rune(c)) {
			out = fmt.Appendf(out, "#%03o", c)
			continue
		}
		out = append(out, c)
	}
	return out
}

func isControl(r rune) bool { return (r < 0x20 && r != '\n') || r == 0x7f }

func parse(p syslog.Machine, b []byte) (*rfc3164.SyslogMessage, error) {
	m, err := p.Parse(b)
	if err != nil {
		return nil, err
	}
	sm, ok := m.(*rfc3164.SyslogMessage)
	if !ok || sm == nil {
		return nil, errors.New("no message")
	}
	return sm, nil
}

// cutPRI splits "<PRI>rest": PRI 0–191, at most 3 digits, no leading zero
// but "<0>".
func cutPRI(b []byte) (int, []byte, bool) {
	if len(b) < 3 || b[0] != '<' {
		return 0, nil, false
	}
	end := bytes.IndexByte(b[:min(len(b), 5)], '>')
	if end < 2 {
		return 0, nil, false
	}
	digits := string(b[1:end])
	if len(digits) > 1 && digits[0] == '0' {
		return 0, nil, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || n > 191 || strings.ContainsAny(digits, "+-") {
		return 0, nil, false
	}
	return n, b[end+1:], true
}

// ParseLocal reads a datagram a local program sent to /dev/log, or one
// the Receiver got: Parse, and when that fails, the relay rule for a
// missing PRI (RFC 3164 §4.3.3) — the whole datagram is the text of a
// user.notice message.
func ParseLocal(b []byte) Message {
	if m, err := Parse(b); err == nil {
		return m
	}
	return Message{Priority: 13, Text: string(bytes.TrimRight(b, "\n\x00"))}
}
