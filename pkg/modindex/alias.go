package modindex

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// An Alias is one modules.alias line: a shell pattern (path.Match) over
// a device's modalias, and the Name of the module that drives such
// devices.
type Alias struct {
	Pattern string
	Module  string
}

// ParseAliases reads a modules.alias, "alias PATTERN MODULE" per line,
// in file order. Blank lines and # comments are skipped; any other line,
// or a pattern path.Match rejects, is an error. It is for a file this
// package wrote (WriteAliases); a distribution's goes through
// UsableAliases.
func ParseAliases(r io.Reader) ([]Alias, error) {
	return parseAliases(r, true)
}

// UsableAliases reads a distribution's modules.alias as ParseAliases
// does, but drops the lines it would refuse instead of failing: the
// builder carries to the node only what the node's matcher can use.
func UsableAliases(r io.Reader) ([]Alias, error) {
	return parseAliases(r, false)
}

func parseAliases(r io.Reader, strict bool) ([]Alias, error) {
	var l []Alias
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxLine)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		f := strings.Fields(t)
		if len(f) != 3 || f[0] != "alias" {
			if !strict {
				continue
			}
			return nil, fmt.Errorf("line %d: want \"alias PATTERN MODULE\"", line)
		}
		if _, err := path.Match(f[1], ""); err != nil {
			if !strict {
				continue
			}
			return nil, fmt.Errorf("line %d: pattern %q: %w", line, f[1], err)
		}
		l = append(l, Alias{Pattern: f[1], Module: Name(f[2])})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return l, nil
}

// WriteAliases writes aliases as a modules.alias that ParseAliases reads.
func WriteAliases(w io.Writer, aliases []Alias) error {
	var b strings.Builder
	for _, a := range aliases {
		fmt.Fprintf(&b, "alias %s %s\n", a.Pattern, a.Module)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
