package fstab

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/beo-cluster/beo/pkg/config"
)

// DefaultPath is the fstab every node reads unless it has its own
// (DefaultPath.N).
const DefaultPath = "/etc/beowulf/fstab"

// The variables a SOURCE may use.
const (
	VarMaster  = "$MASTER"
	VarRAMDisk = "$RAMDISK"
)

// Entry is one fstab line as written, escapes decoded.
type Entry struct {
	Line    int
	Source  string
	Target  string
	Type    string
	Options []string // "defaults" when the line has none
	// Bad is the line's error, "" for a good line. A bad line is never
	// mounted; Fatal still says whether its failure stops the node.
	Bad string
}

// Fatal reports whether a failure of this line makes the node error: it
// does unless the line says nonfatal (or nofail).
func (e Entry) Fatal() bool {
	return !slices.Contains(e.Options, "nonfatal") && !slices.Contains(e.Options, "nofail")
}

// Auto reports whether the line is mounted at all (not noauto).
func (e Entry) Auto() bool { return !slices.Contains(e.Options, "noauto") }

// NFS reports whether the line is an NFS mount.
func (e Entry) NFS() bool { return e.Type == "nfs" || e.Type == "nfs4" }

// Export returns the path on the master an NFS line needs exported, and
// whether the node may write there: the line's SOURCE is $MASTER:/PATH
// or master:/PATH. ok is false for other lines and bad ones.
func (e Entry) Export(master netip.Addr) (p string, rw, ok bool) {
	if e.Bad != "" || !e.NFS() || !e.Auto() {
		return "", false, false
	}
	host, p, _ := splitNFS(e.Source)
	if host != VarMaster {
		a, err := netip.ParseAddr(host)
		if err != nil || !master.IsValid() || a.Unmap() != master.Unmap() {
			return "", false, false
		}
	}
	return p, !slices.Contains(e.Options, "ro"), true
}

// Table is one parsed fstab file.
type Table struct {
	File    string
	Entries []Entry // every line holding a mount, bad ones too, in file order
	diags   []config.Diag
}

// Diags returns every diagnostic, in line order.
func (t *Table) Diags() []config.Diag { return slices.Clone(t.diags) }

// Err returns a *config.DiagError holding the error diagnostics, or nil.
func (t *Table) Err() error {
	var errs []config.Diag
	for _, d := range t.diags {
		if d.Severity == config.Error {
			errs = append(errs, d)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &config.DiagError{Diags: errs}
}

// NodeFile is node n's own file beside base: base.N.
func NodeFile(base string, n int) string { return base + "." + strconv.Itoa(n) }

// Load reads node n's fstab: base.N when it exists, else base. With
// neither it returns a nil Table and a nil error (no mounts). A file that
// cannot be read is an error — so is one that is not a regular file (after
// symlinks) or is larger than config.MaxFileSize (config.ReadFile); one
// that parses with errors is returned with its *config.DiagError.
func Load(base string, n int) (*Table, error) {
	for _, f := range []string{NodeFile(base, n), base} {
		data, err := config.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fstab: %w", err)
		}
		return Parse(f, data)
	}
	return nil, nil
}

// Options are what the master knows that Parse's checks can use. The
// zero Options checks the file alone.
type Options struct {
	// KnownType reports whether the nodes' kernel has a file system type
	// beyond the common ones Parse knows (the master's /proc/filesystems
	// and the file systems of its module tree, from which the boot image
	// is built). nil: only the common ones are known.
	KnownType func(typ string) bool
}

// Parse parses an fstab file's bytes; file names it in diagnostics. It
// returns the Table either way, with a *config.DiagError when a line has
// an error (warnings alone give nil).
func Parse(file string, data []byte) (*Table, error) {
	return ParseWith(file, data, Options{})
}

// ParseWith is Parse with what o knows.
func ParseWith(file string, data []byte, o Options) (*Table, error) {
	t := &Table{File: file}
	lines := bytes.Split(data, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		if msg := notText(l); msg != "" {
			t.errorf(i+1, "%s; nothing in the file is read", msg)
			return t, t.Err()
		}
	}
	targets := map[string]int{}
	sources := map[string]int{}
	for i, l := range lines {
		n := i + 1
		l = bytes.TrimSuffix(l, []byte("\r"))
		if msg := badChar(l); msg != "" {
			t.errorf(n, "%s; line ignored", msg)
			continue
		}
		fields := strings.Fields(string(l))
		for j, f := range fields {
			if strings.HasPrefix(f, "#") {
				fields = fields[:j]
				break
			}
		}
		if len(fields) == 0 {
			continue
		}
		e := t.entry(n, fields)
		if e.Bad == "" {
			t.checkType(e, o)
		}
		if e.Bad == "" && e.Auto() && e.Type != "swap" {
			if bad := nodeMount(e); bad != "" {
				e.Bad = bad
				t.errorf(n, "%s", bad)
			}
		}
		if e.Bad == "" && e.Auto() && e.Type != "swap" {
			if prev, ok := targets[e.Target]; ok {
				t.warnf(n, "%s is mounted by line %d too: this mount hides that one", e.Target, prev)
			}
			targets[e.Target] = n
		}
		if key := sourceKey(e); e.Bad == "" && e.Auto() && key != "" {
			if prev, ok := sources[key]; ok {
				t.warnf(n, "%s is mounted by line %d too: one file system at two places (use a bind mount if that is meant)", e.Source, prev)
			} else {
				sources[key] = n
			}
		}
		t.Entries = append(t.Entries, e)
	}
	return t, t.Err()
}

// entry reads one line's fields; a problem makes it a bad Entry with an
// error diagnostic.
func (t *Table) entry(n int, fields []string) Entry {
	e := Entry{Line: n, Options: []string{"defaults"}}
	bad := func(format string, args ...any) Entry {
		e.Bad = fmt.Sprintf(format, args...)
		t.errorf(n, "%s", e.Bad)
		return e
	}
	for i, f := range fields {
		fields[i] = unescape(f)
		if msg := badChar([]byte(fields[i])); msg != "" {
			return bad("field %d: an escape makes a %s", i+1, msg)
		}
	}
	if len(fields) >= 4 {
		e.Options = strings.Split(fields[3], ",")
	}
	if len(fields) < 3 || len(fields) > 6 {
		return bad("%d fields; want SOURCE TARGET TYPE [OPTIONS [DUMP [PASS]]]", len(fields))
	}
	e.Source, e.Target, e.Type = fields[0], fields[1], fields[2]
	for _, f := range fields[min(4, len(fields)):] {
		if _, err := strconv.ParseUint(f, 10, 31); err != nil {
			return bad("dump/pass field %q is not a number", f)
		}
	}
	for _, o := range e.Options {
		if o == "" {
			return bad("empty option in %q", fields[3])
		}
		if v, ok := unknownVar(o); ok {
			return bad("option %q: unknown variable %s (beo knows %s)", o, v, VarMaster)
		}
	}
	if !validType(e.Type) {
		return bad("bad file system type %q", e.Type)
	}
	switch {
	case e.Type == "swap" && (e.Target == "none" || e.Target == "swap"):
	case !path.IsAbs(e.Target):
		return bad("target %q is not an absolute path", e.Target)
	case slices.Contains(strings.Split(e.Target, "/"), ".."):
		return bad("target %q climbs with ..", e.Target)
	default:
		e.Target = path.Clean(e.Target)
	}
	switch {
	case e.Source == VarRAMDisk:
		if e.NFS() || e.Type == "swap" {
			return bad("%s cannot be of type %s", VarRAMDisk, e.Type)
		}
		if e.Type != "tmpfs" && e.Type != "ramfs" {
			t.warnf(n, "%s is mounted as tmpfs, not %s", VarRAMDisk, e.Type)
		}
	case e.NFS():
		host, p, ok := splitNFS(e.Source)
		if !ok {
			return bad("NFS source %q: want HOST:/PATH, HOST an address or %s", e.Source, VarMaster)
		}
		if host != VarMaster {
			if _, err := netip.ParseAddr(host); err != nil {
				return bad("NFS source %q: %q is not an address; a node mounts before names resolve, so use the address or %s", e.Source, host, VarMaster)
			}
		}
		if v, ok := unknownVar(p); ok {
			return bad("source %q: unknown variable %s", e.Source, v)
		}
	default:
		if v, ok := unknownVar(e.Source); ok && v == VarRAMDisk {
			return bad("source %q: %s stands for a whole SOURCE", e.Source, v)
		} else if ok {
			return bad("source %q: unknown variable %s (beo knows %s and %s)", e.Source, v, VarMaster, VarRAMDisk)
		}
	}
	return e
}

// splitNFS splits HOST:/PATH (a bracketed IPv6 HOST too).
func splitNFS(src string) (host, p string, ok bool) {
	if strings.HasPrefix(src, "[") {
		i := strings.Index(src, "]:")
		if i < 0 {
			return "", "", false
		}
		host, p = src[1:i], src[i+2:]
	} else {
		i := strings.LastIndex(src, ":/")
		if i < 0 {
			return "", "", false
		}
		host, p = src[:i], src[i+1:]
	}
	if host == "" || !path.IsAbs(p) {
		return "", "", false
	}
	return host, path.Clean(p), true
}

// unknownVar finds a $NAME other than $MASTER (and $RAMDISK, which only a
// whole SOURCE may be).
func unknownVar(s string) (string, bool) {
	for i := strings.IndexByte(s, '$'); i >= 0; i = strings.IndexByte(s, '$') {
		s = s[i:]
		if !strings.HasPrefix(s, VarMaster) {
			end := 1
			for end < len(s) && (s[end] == '_' || unicode.IsLetter(rune(s[end])) || unicode.IsDigit(rune(s[end]))) {
				end++
			}
			return s[:end], true
		}
		s = s[len(VarMaster):]
	}
	return "", false
}

func validType(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for _, r := range t {
		if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || strings.ContainsRune("._+-", r)) {
			return false
		}
	}
	return true
}

// unescape decodes fstab(5)'s octal escapes (\040 and the like).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (t *Table) diag(line int, sev config.Severity, format string, args ...any) {
	t.diags = append(t.diags, config.Diag{File: t.File, Line: line, Severity: sev, Msg: fmt.Sprintf(format, args...)})
}

func (t *Table) errorf(line int, format string, args ...any) {
	t.diag(line, config.Error, format, args...)
}

func (t *Table) warnf(line int, format string, args ...any) {
	t.diag(line, config.Warning, format, args...)
}

// notText reports a NUL byte or invalid UTF-8 in a line.
func notText(l []byte) string {
	for off := 0; off < len(l); {
		r, size := utf8.DecodeRune(l[off:])
		switch {
		case r == 0:
			return fmt.Sprintf("not a text file: NUL byte at column %d", off+1)
		case r == utf8.RuneError && size == 1:
			return fmt.Sprintf("not a text file: invalid UTF-8 byte %#02x at column %d", l[off], off+1)
		}
		off += size
	}
	return ""
}

// badChar reports a control character (other than tab) or other
// non-printable rune in a line of text.
func badChar(l []byte) string {
	for off := 0; off < len(l); {
		r, size := utf8.DecodeRune(l[off:])
		if r != '\t' && !unicode.IsPrint(r) {
			what := "non-printable character"
			if unicode.IsControl(r) {
				what = "control character"
			}
			return fmt.Sprintf("%s %U at column %d", what, r, off+1)
		}
		off += size
	}
	return ""
}
