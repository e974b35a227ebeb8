package job

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// output is one process's stdout or stderr on its way to bpsh's own: whole
// lines (with its node's "%3d: " prefix) under -L/-p, and through a spool
// under -s.
type output struct {
	node         int
	dest         io.Writer
	lock         *sync.Mutex // shared by every output writing to dest
	line, prefix bool
	partial      []byte
	spool        *spool
}

func newOutput(node int, dest io.Writer, lock *sync.Mutex, o Options, seq *sequencer) *output {
	out := &output{node: node, dest: dest, lock: lock, line: o.Line, prefix: o.Prefix}
	if seq != nil {
		out.spool = &spool{limit: o.Buf, dest: dest, lock: lock}
	}
	return out
}

func (o *output) Write(p []byte) (int, error) {
	if !o.line {
		return len(p), o.emit(p)
	}
	o.partial = append(o.partial, p...)
	i := bytes.LastIndexByte(o.partial, '\n')
	if i < 0 {
		return len(p), nil
	}
	whole := o.partial[:i+1]
	var err error
	if o.prefix {
		err = o.emit(o.prefixed(whole))
	} else {
		err = o.emit(whole)
	}
	o.partial = append(o.partial[:0], o.partial[i+1:]...)
	return len(p), err
}

func (o *output) prefixed(lines []byte) []byte {
	var b bytes.Buffer
	pre := fmt.Sprintf("%3d: ", o.node)
	for len(lines) > 0 {
		i := bytes.IndexByte(lines, '\n')
		b.WriteString(pre)
		if i < 0 {
			b.Write(lines)
			break
		}
		b.Write(lines[:i+1])
		lines = lines[i+1:]
	}
	return b.Bytes()
}

// close flushes an unterminated last line: under Prefix as a line of its
// own, newline added, so that it is never glued to another process's
// output; under Line alone as it was (bpsh -L keeps the bytes).
func (o *output) close() {
	if len(o.partial) == 0 {
		return
	}
	if o.prefix {
		o.emit(o.prefixed(append(o.partial, '\n')))
	} else {
		o.emit(o.partial)
	}
	o.partial = nil
}

func (o *output) emit(b []byte) error {
	if o.spool != nil {
		return o.spool.write(b)
	}
	o.lock.Lock()
	defer o.lock.Unlock()
	_, err := o.dest.Write(b)
	return err
}

// spool holds a node's output until its turn under -s: limit bytes in
// memory, the rest in a temporary file. Once live it writes through.
type spool struct {
	mu    sync.Mutex
	limit int
	live  bool
	mem   bytes.Buffer
	file  *os.File
	dest  io.Writer
	lock  *sync.Mutex
	err   error
}

func (s *spool) write(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live {
		s.lock.Lock()
		defer s.lock.Unlock()
		_, err := s.dest.Write(b)
		return err
	}
	if s.err != nil {
		return s.err
	}
	if s.file == nil && s.mem.Len()+len(b) <= s.limit {
		s.mem.Write(b)
		return nil
	}
	if s.file == nil {
		f, err := os.CreateTemp("", "bpsh-spool-")
		if err != nil {
			s.err = fmt.Errorf("spool output: %w", err)
			return s.err
		}
		os.Remove(f.Name()) // unlinked: vanishes with bpsh
		s.file = f
	}
	_, err := s.file.Write(b)
	if err != nil {
		s.err = fmt.Errorf("spool output: %w", err)
	}
	return s.err
}

// goLive prints what was held (after header, if any) and writes through
// from now on.
func (s *spool) goLive(header string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lock.Lock()
	defer s.lock.Unlock()
	if header != "" {
		io.WriteString(s.dest, header)
	}
	s.dest.Write(s.mem.Bytes())
	s.mem = bytes.Buffer{}
	if s.file != nil {
		s.file.Seek(0, io.SeekStart)
		io.Copy(s.dest, s.file)
		s.file.Close()
		s.file = nil
	}
	s.live = true
}

// sequencer lets one node at a time print, in node-list order (-s).
type sequencer struct {
	mu       sync.Mutex
	jobs     []*proc
	finished map[*proc]bool
	head     int
	divider  bool
	started  bool
}

func (q *sequencer) add(j *proc, divider bool) {
	q.jobs = append(q.jobs, j)
	q.divider = divider
}

func divider(node int) string {
	return fmt.Sprintf("%d\t%s\n", node, strings.Repeat("-", 69))
}

// start makes the first node live.
func (q *sequencer) start() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.finished = map[*proc]bool{}
	q.started = true
	q.advance()
}

func (q *sequencer) live(j *proc) {
	h := ""
	if q.divider {
		h = divider(j.node)
	}
	j.out.spool.goLive(h)
	j.err.spool.goLive("")
}

// advance makes the head live and moves past finished heads. Called with mu held.
func (q *sequencer) advance() {
	for q.head < len(q.jobs) {
		j := q.jobs[q.head]
		q.live(j)
		if !q.finished[j] {
			return
		}
		q.head++
	}
}

func (q *sequencer) done(j *proc) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.finished[j] = true
	if q.head < len(q.jobs) && q.jobs[q.head] == j {
		q.head++
		q.advance()
	}
}
