package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/beo-cluster/beo/pkg/atomicfile"
)

// File is a config file being edited: its bytes and the Config they parse
// to. Edits change only the bytes they must and re-parse; Save writes the
// file back atomically. A File is not safe for concurrent use.
type File struct {
	path   string
	opt    Options
	src    []byte // current contents
	disk   []byte // contents on disk when read or last saved
	exists bool   // whether the file existed then
	cfg    *Config
}

// Open reads (ReadFile) and parses the file at path. A read error returns
// a nil File; a parse error (*DiagError) returns the File too, still editable.
func Open(path string, opt Options) (*File, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	f, err := NewFile(path, data, opt)
	f.disk, f.exists = slices.Clone(data), true
	return f, err
}

// NewFile starts a File at path from src (say DefaultText when the file
// does not exist yet); Save creates the file if needed.
func NewFile(path string, src []byte, opt Options) (*File, error) {
	f := &File{path: path, opt: opt, src: slices.Clone(src)}
	cfg, err := Parse(path, f.src, opt)
	f.cfg = cfg
	return f, err
}

// Config returns the Config of the current contents.
func (f *File) Config() *Config { return f.cfg }

// Bytes returns a copy of the current contents.
func (f *File) Bytes() []byte { return slices.Clone(f.src) }

// SetBootStage rewrites the boot-stage token of node n's line, leaving
// every other byte of the file as it was. The line must have a
// boot-sequence and boot-stage.
func (f *File) SetBootStage(n int, stage BootStage) error {
	if stage != StagePXE && stage != StageLocal {
		return fmt.Errorf("node %d: bad boot-stage %q", n, stage)
	}
	i, ok := f.cfg.byNum[n]
	if !ok {
		return fmt.Errorf("node %d: no node line", n)
	}
	nl := f.cfg.nodeLines[i]
	if nl.stageTok < 0 {
		return fmt.Errorf("node %d: line %d has no boot-sequence and boot-stage", n, nl.line)
	}
	if nl.stage == stage {
		return nil
	}
	start, end := lineSpan(f.src, nl.line)
	tok := fields(f.src[start:end])[nl.stageTok]
	at := start + tok.off
	src := slices.Concat(f.src[:at], []byte(stage), f.src[at+len(tok.text):])
	return f.replace(src, fmt.Sprintf("node %d: set boot-stage", n))
}

// AppendNode adds the line `node N MAC…` at the end of the file.
func (f *File) AppendNode(n int, macs ...MAC) error {
	if len(macs) == 0 {
		return fmt.Errorf("node %d: append: no MAC", n)
	}
	return f.appendLine(fmt.Sprintf("node %d %s", n, joinMACs(macs)), fmt.Sprintf("node %d: append", n))
}

// AppendIgnore adds the line `ignore MAC…` at the end of the file.
func (f *File) AppendIgnore(macs ...MAC) error {
	if len(macs) == 0 {
		return errors.New("append ignore: no MAC")
	}
	return f.appendLine("ignore "+joinMACs(macs), "append ignore")
}

func joinMACs(macs []MAC) string {
	s := make([]string, len(macs))
	for i, m := range macs {
		s[i] = m.String()
	}
	return strings.Join(s, " ")
}

// appendLine adds line and a '\n', first ending an unterminated last line.
func (f *File) appendLine(line, what string) error {
	src := slices.Clone(f.src)
	if len(src) > 0 && src[len(src)-1] != '\n' {
		src = append(src, '\n')
	}
	return f.replace(append(src, line+"\n"...), what)
}

// replace adopts src unless it has more errors than the current contents.
func (f *File) replace(src []byte, what string) error {
	cfg, err := Parse(f.path, src, f.opt)
	if errorCount(cfg) > errorCount(f.cfg) {
		return fmt.Errorf("%s: %w", what, err)
	}
	f.src, f.cfg = src, cfg
	return nil
}

func errorCount(c *Config) int {
	n := 0
	for _, d := range c.diags {
		if d.Severity == Error {
			n++
		}
	}
	return n
}

// lineSpan returns the byte span of line number ln (1-based), without its '\n'.
func lineSpan(src []byte, ln int) (start, end int) {
	for range ln - 1 {
		start += bytes.IndexByte(src[start:], '\n') + 1
	}
	end = len(src)
	if i := bytes.IndexByte(src[start:], '\n'); i >= 0 {
		end = start + i
	}
	return start, end
}

// ModifiedError is returned by Save when the file on disk changed since it
// was read or last saved: someone edited it by hand. Open it again,
// redo the edit, and save.
type ModifiedError struct{ Path string }

func (e *ModifiedError) Error() string {
	return e.Path + ": changed on disk since it was read; not overwritten"
}

// Save writes the contents back if they changed, atomically: a temporary
// file in the same directory gets the bytes, the original's permission
// bits and an fsync, is renamed over the file (the target of a symlink),
// and the directory is fsynced. It refuses (*ModifiedError) to overwrite a
// file that changed on disk since it was read.
func (f *File) Save() error {
	cur, err := ReadFile(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !f.exists:
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("config: %w", err)
	case err != nil || !f.exists || !bytes.Equal(cur, f.disk):
		return &ModifiedError{Path: f.path}
	}
	if f.exists && bytes.Equal(f.src, f.disk) {
		return nil
	}
	if err := writeAtomic(f.path, f.src); err != nil {
		return fmt.Errorf("config: save %s: %w", f.path, err)
	}
	f.disk, f.exists = slices.Clone(f.src), true
	return nil
}

// writeAtomic replaces path's contents with data (pkg/atomicfile),
// keeping the permission bits an admin gave the file (0644 for a new one).
func writeAtomic(path string, data []byte) error {
	return atomicfile.WriteFile(path, data, atomicfile.Perm(path, 0o644))
}
