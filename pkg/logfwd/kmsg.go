package logfwd

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// Kmsg is one /dev/kmsg record.
type Kmsg struct {
	Priority int           // facility*8 + level; kernel messages have facility 0
	Seq      uint64        // the kernel's sequence number
	Since    time.Duration // time since boot (the kernel's monotonic clock)
	Cont     bool          // flag 'c': continues the previous record (old kernels)
	Text     string        // the message, non-printables already escaped \xNN by the kernel
}

// ParseKmsg reads one record: "PRI,SEQ,USEC,FLAGS[,…];TEXT\n", optionally
// followed by " KEY=VALUE\n" dictionary lines, which are dropped.
func ParseKmsg(rec []byte) (Kmsg, error) {
	head, text, ok := bytes.Cut(rec, []byte{';'})
	if !ok {
		return Kmsg{}, fmt.Errorf("kmsg record: no ';'")
	}
	f := bytes.Split(head, []byte{','})
	if len(f) < 4 {
		return Kmsg{}, fmt.Errorf("kmsg record: want 4 header fields, got %d", len(f))
	}
	pri, err := strconv.ParseUint(string(f[0]), 10, 16)
	if err != nil || pri > 191 {
		return Kmsg{}, fmt.Errorf("kmsg record: bad priority %q", f[0])
	}
	seq, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return Kmsg{}, fmt.Errorf("kmsg record: bad sequence number %q", f[1])
	}
	usec, err := strconv.ParseUint(string(f[2]), 10, 63)
	if err != nil || usec > uint64(1<<63-1)/1000 {
		return Kmsg{}, fmt.Errorf("kmsg record: bad timestamp %q", f[2])
	}
	text, _, _ = bytes.Cut(text, []byte{'\n'})
	return Kmsg{
		Priority: int(pri),
		Seq:      seq,
		Since:    time.Duration(usec) * time.Microsecond,
		Cont:     bytes.HasPrefix(f[3], []byte{'c'}),
		Text:     string(text),
	}, nil
}

// message turns a kernel record into a syslog message: tag "kernel" for
// the kernel's own (facility 0); for what a program wrote into /dev/kmsg
// with another facility, a leading "tag[pid]: " of its text becomes the
// tag. boot is the wall-clock time of boot, for legacy timestamps.
func (k Kmsg) message(boot time.Time) Message {
	m := Message{Priority: k.Priority, Tag: "kernel", Text: k.Text}
	if !boot.IsZero() {
		m.Time = boot.Add(k.Since)
	}
	if k.Priority>>3 != 0 {
		if tag, rest, ok := bytesCutTag(k.Text); ok {
			m.Tag, m.Text = tag, rest
		}
	}
	return m
}

// bytesCutTag splits "tag[pid]: text" or "tag: text" (tag without spaces,
// at most 48 bytes).
func bytesCutTag(s string) (string, string, bool) {
	for i := 0; i < len(s) && i <= 48; i++ {
		switch s[i] {
		case ' ', '\t':
			return "", "", false
		case ':':
			if i == 0 || i+1 >= len(s) || s[i+1] != ' ' {
				return "", "", false
			}
			return s[:i], s[i+2:], true
		}
	}
	return "", "", false
}
