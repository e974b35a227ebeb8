// Package nodelog owns the head node's per-node logs, DIR/node.N
// (/var/log/beowulf/node.N by default): what happened to node N as the
// master saw it. The boot server writes its dialog with the node (DHCP,
// TFTP and HTTP fetches, boot-stage rewrites), bpmaster the node's
// sessions (connected, refused, down, node_up); the lab's boot timeline
// (pkg/lab) reads them back. One line per event:
//
//	2025-01-02T03:04:05.678Z beoserv: REQUEST 52:54:00:be:00:64 from iPXE (PXEClient) → ACK 10.99.0.102
//	2025-01-02T03:04:15.012+01:00 bpmaster: connected from 10.99.0.102:41234 (macs [52:54:00:be:00:64], build 1a2b3c)
//
// that is TIME, a space, WHO (the daemon), ": ", TEXT. TIME is RFC 3339
// with milliseconds (Stamp) in the writer's clock's zone: DHCP, the iPXE
// script and the kernel fetch happen within one second, and the timeline
// tells them apart. Other lines may be in the file — a node_up script's
// output goes there as it is — and Parse skips them.
//
// Each line is one write(2) on a descriptor opened with O_APPEND, so the
// writers — the boot server and bpmaster, in one process or several —
// never interleave within a line. The file is opened per line: node logs
// are written a few times per boot, and an admin may rotate or delete
// them at any time.
package nodelog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Stamp is the time layout of a line (RFC 3339 with milliseconds). It
// parses as time.RFC3339Nano.
const Stamp = "2006-01-02T15:04:05.000Z07:00"

// Path is node n's log in dir.
func Path(dir string, n int) string {
	return filepath.Join(dir, "node."+strconv.Itoa(n))
}

// Log writes node logs in a directory for one daemon. The zero Log
// writes nothing.
type Log struct {
	Dir   string           // "" = no node logs
	Who   string           // the daemon, written on every line
	Clock func() time.Time // nil = time.Now
}

// Printf appends one line to node n's log, creating the directory
// (0755) and the file (0644) if they are missing. The text is formatted
// as fmt.Sprintf does; a newline in it would start a line Parse skips,
// so it is written as a space.
func (l Log) Printf(n int, format string, args ...any) error {
	if l.Dir == "" {
		return nil
	}
	now := time.Now
	if l.Clock != nil {
		now = l.Clock
	}
	text := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " ")
	line := now().Format(Stamp) + " " + l.Who + ": " + text + "\n"
	if err := appendLine(Path(l.Dir, n), line); err != nil {
		return fmt.Errorf("node %d: log: %w", n, err)
	}
	return nil
}

func appendLine(path, line string) error {
	open := func() (*os.File, error) {
		return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	}
	f, err := open()
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			f, err = open()
		}
	}
	if err != nil {
		return err
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// A Line is one parsed line of a node log.
type Line struct {
	T    time.Time
	Who  string // "" when the line names no daemon
	Text string
}

// Parse reads a node log's lines. A line whose first field is not an
// RFC 3339 time is skipped; one without "WHO: " after the time (older
// bpmaster lines) has Who "" and the rest as Text.
func Parse(r io.Reader) ([]Line, error) {
	var ls []Line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if l, ok := parseLine(sc.Text()); ok {
			ls = append(ls, l)
		}
	}
	return ls, sc.Err()
}

func parseLine(s string) (Line, bool) {
	ts, rest, ok := strings.Cut(s, " ")
	if !ok {
		return Line{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return Line{}, false
	}
	who, text, ok := strings.Cut(rest, ": ")
	if !ok || who == "" || strings.ContainsAny(who, " \t") {
		return Line{T: t, Text: rest}, true
	}
	return Line{T: t, Who: who, Text: text}, true
}

// Read parses node n's log in dir (see Parse).
func Read(dir string, n int) ([]Line, error) {
	f, err := os.Open(Path(dir, n))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f)
}
