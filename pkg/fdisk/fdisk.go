package fdisk

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Path is where the master keeps the file.
const Path = "/etc/beowulf/fdisk"

// Type is a partition's use.
type Type string

// The partition types.
const (
	Linux Type = "linux" // a filesystem
	Swap  Type = "swap"
)

// Size is a part's size: Bytes, or Percent of the disk, or Rest.
type Size struct {
	Bytes   int64
	Percent int
	Rest    bool
}

func (s Size) String() string {
	switch {
	case s.Rest:
		return "rest"
	case s.Percent > 0:
		return strconv.Itoa(s.Percent) + "%"
	}
	return FormatBytes(s.Bytes)
}

// Part is one partition of a section.
type Part struct {
	Type Type
	Size Size
	Line int
}

// Disk is one section: the disks it applies to and their partitions.
type Disk struct {
	Name  string // kernel name, or * for any
	Size  int64  // 0: any size
	Parts []Part
	Line  int
}

// File is a parsed /etc/beowulf/fdisk.
type File struct {
	Disks []Disk
}

// Diag is one problem, tied to its line.
type Diag struct {
	File string
	Line int
	Msg  string
}

func (d Diag) Error() string { return fmt.Sprintf("%s:%d: %s", d.File, d.Line, d.Msg) }

// ParseError holds every problem Parse found, in line order.
type ParseError struct{ Diags []Diag }

func (e *ParseError) Error() string {
	s := make([]string, len(e.Diags))
	for i, d := range e.Diags {
		s[i] = d.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the diagnostics, one error each.
func (e *ParseError) Unwrap() []error {
	errs := make([]error, len(e.Diags))
	for i, d := range e.Diags {
		errs[i] = d
	}
	return errs
}

// Parse reads the file's text; name is the file name for diagnostics. On
// any error it returns a nil File and a *ParseError.
func Parse(name string, data []byte) (*File, error) {
	var f File
	var diags []Diag
	bad := func(line int, format string, a ...any) {
		diags = append(diags, Diag{name, line, fmt.Sprintf(format, a...)})
	}
	if !utf8.Valid(data) {
		return nil, &ParseError{[]Diag{{name, 1, "not UTF-8 text"}}}
	}
	end := func() {
		if len(f.Disks) == 0 {
			return
		}
		d := &f.Disks[len(f.Disks)-1]
		if len(d.Parts) == 0 {
			bad(d.Line, "disk %s has no part lines", d.Name)
			return
		}
		pct := 0
		for i, p := range d.Parts {
			pct += p.Size.Percent
			if p.Size.Rest && i != len(d.Parts)-1 {
				bad(p.Line, "part: rest must be the disk's last partition")
			}
		}
		if pct > 100 {
			bad(d.Line, "disk %s: partitions add up to %d%% of the disk", d.Name, pct)
		}
		if len(d.Parts) > MaxParts {
			bad(d.Line, "disk %s: %d partitions, at most %d", d.Name, len(d.Parts), MaxParts)
		}
	}
	for i, l := range strings.Split(string(data), "\n") {
		line := i + 1
		if j := strings.IndexByte(l, '#'); j >= 0 {
			l = l[:j]
		}
		if strings.ContainsFunc(l, func(r rune) bool { return r < ' ' && r != '\t' && r != '\r' }) {
			bad(line, "control character in line")
			continue
		}
		fs := strings.Fields(l)
		if len(fs) == 0 {
			continue
		}
		switch fs[0] {
		case "disk":
			end()
			if len(fs) < 2 || len(fs) > 3 {
				bad(line, "usage: disk NAME [SIZE]")
				continue
			}
			d := Disk{Name: fs[1], Line: line}
			if !validName(d.Name) {
				bad(line, "disk: bad disk name %q (a kernel name like vda, or *)", d.Name)
				continue
			}
			if len(fs) == 3 {
				n, err := ParseBytes(fs[2])
				if err != nil {
					bad(line, "disk %s: %v", d.Name, err)
					continue
				}
				d.Size = n
			}
			for _, e := range f.Disks {
				if e.Name == d.Name && (e.Size == d.Size || e.Size == 0) {
					bad(line, "disk %s: never used, line %d already matches these disks", d.Name, e.Line)
					break
				}
			}
			f.Disks = append(f.Disks, d)
		case "part":
			if len(f.Disks) == 0 {
				bad(line, "part before any disk line")
				continue
			}
			if len(fs) != 3 {
				bad(line, "usage: part linux|swap SIZE|N%%|rest")
				continue
			}
			p := Part{Type: Type(fs[1]), Line: line}
			if p.Type != Linux && p.Type != Swap {
				bad(line, "part: bad type %q (want linux or swap)", fs[1])
				continue
			}
			s, err := parseSize(fs[2])
			if err != nil {
				bad(line, "part: %v", err)
				continue
			}
			p.Size = s
			d := &f.Disks[len(f.Disks)-1]
			d.Parts = append(d.Parts, p)
		default:
			bad(line, "unknown directive %q (want disk or part)", fs[0])
		}
	}
	end()
	if len(diags) > 0 {
		sortDiags(diags)
		return nil, &ParseError{diags}
	}
	return &f, nil
}

func sortDiags(d []Diag) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j].Line < d[j-1].Line; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}

// validName accepts * or a kernel block device name: letters, digits, and
// - _ . but not . or .. (it becomes a path under /dev).
func validName(s string) bool {
	if s == "*" {
		return true
	}
	if s == "" || s == "." || s == ".." || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':' || r == '!') {
			return false
		}
	}
	return true
}

func parseSize(s string) (Size, error) {
	if s == "rest" {
		return Size{Rest: true}, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 100 {
			return Size{}, fmt.Errorf("bad percentage %q (want 1%%–100%%)", s)
		}
		return Size{Percent: n}, nil
	}
	n, err := ParseBytes(s)
	if err != nil {
		return Size{}, err
	}
	return Size{Bytes: n}, nil
}

var units = []struct {
	suffix string
	shift  uint
}{{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}}

// ParseBytes reads a positive number of bytes with an optional binary
// suffix K, M, G or T (also KiB, MiB…).
func ParseBytes(s string) (int64, error) {
	num, shift := s, uint(0)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = n, u.shift
			break
		}
		if n, ok := strings.CutSuffix(s, u.suffix+"iB"); ok {
			num, shift = n, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("bad size %q (want bytes, or a number with K, M, G or T)", s)
	}
	return n << shift, nil
}

// FormatBytes writes n with the largest suffix that keeps it exact.
func FormatBytes(n int64) string {
	for _, u := range units {
		if n > 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// Human writes n for people: exact as FormatBytes when that has a
// suffix, else to one decimal of the largest unit it reaches (223.0M).
func Human(n int64) string {
	if s := FormatBytes(n); s[len(s)-1] > '9' || n < 1024 {
		return s
	}
	for _, u := range units {
		if n >= 1<<u.shift {
			return strconv.FormatFloat(float64(n)/float64(int64(1)<<u.shift), 'f', 1, 64) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// Match returns the section for a disk called name of size bytes: the
// first whose name (or *) and size (or none) match.
func (f *File) Match(name string, size int64) (Disk, bool) {
	for _, d := range f.Disks {
		if (d.Name == "*" || d.Name == name) && (d.Size == 0 || d.Size == size) {
			return d, true
		}
	}
	return Disk{}, false
}

// Format writes the file's text, which Parse reads back to the same File
// (line numbers aside).
func (f *File) Format() []byte {
	var b strings.Builder
	b.WriteString("# /etc/beowulf/fdisk: partition tables for the nodes' local disks.\n")
	b.WriteString("# beofdisk -w writes them; see \"beo beofdisk -h\". One section per kind of\n")
	b.WriteString("# disk (disk NAME [SIZE]), then its partitions in order (part linux|swap\n")
	b.WriteString("# SIZE|N%|rest); a disk uses the first section that matches it.\n")
	for _, d := range f.Disks {
		b.WriteString("\n")
		b.WriteString(d.Text())
	}
	return []byte(b.String())
}

// Text is the section's lines.
func (d Disk) Text() string {
	var b strings.Builder
	b.WriteString("disk " + d.Name)
	if d.Size > 0 {
		b.WriteString(" " + FormatBytes(d.Size))
	}
	b.WriteString("\n")
	for _, p := range d.Parts {
		fmt.Fprintf(&b, "part %s %s\n", p.Type, p.Size)
	}
	return b.String()
}

// Info is a disk as a node reports it.
type Info struct {
	Name string // kernel name: vda
	Size int64  // bytes
}

// Default returns the default file for the disks the nodes report: a
// section per distinct name and size, swap of an eighth of the disk
// (between 16 MiB and 2 GiB) then linux for the rest; a disk under
// 256 MiB gets only the linux partition.
func Default(disks []Info) *File {
	var f File
	seen := map[Info]bool{}
	for _, d := range disks {
		if seen[d] || d.Size < 4*mib {
			continue
		}
		seen[d] = true
		sec := Disk{Name: d.Name, Size: d.Size}
		if d.Size >= 256*mib {
			swap := min(max(d.Size/8/mib*mib, 16*mib), 2<<30)
			sec.Parts = append(sec.Parts, Part{Type: Swap, Size: Size{Bytes: swap}})
		}
		sec.Parts = append(sec.Parts, Part{Type: Linux, Size: Size{Rest: true}})
		f.Disks = append(f.Disks, sec)
	}
	return &f
}

// PartName is partition n's kernel name on disk: vda1, nvme0n1p1.
func PartName(disk string, n int) string {
	if disk != "" && disk[len(disk)-1] >= '0' && disk[len(disk)-1] <= '9' {
		return disk + "p" + strconv.Itoa(n)
	}
	return disk + strconv.Itoa(n)
}

// ErrNoFit is what Plan's refusals wrap.
var ErrNoFit = errors.New("layout does not fit the disk")
