package config

import (
	"fmt"
	"sort"
)

// Parse parses a config file's bytes; file names it in diagnostics. It
// always returns the Config it could build (see the package doc for what
// a line with an error contributes; a file that is not text gives an
// empty Config); the error is a *DiagError when some line has an
// error-severity diagnostic (warnings alone give nil).
func Parse(file string, data []byte, opt Options) (*Config, error) {
	p := &parser{
		c: &Config{
			file:    file,
			nodes:   -1,
			byNum:   map[int]int{},
			macs:    map[MAC]macRef{},
			classes: map[string]*class{},
			ports:   DefaultPorts(),
			ping:    DefaultPingTimeout,
			assign:  DefaultNodeAssign,
			mkfs:    DefaultMkfs,
			fsck:    DefaultFsck,
		},
		once: map[string]int{},
	}
	raw := splitLines(data)
	if line, msg := notText(raw); line > 0 {
		p.errorf(line, "%s", msg)
		return p.c, p.c.Err()
	}
	lines := make([][]field, len(raw))
	for i, l := range raw {
		if msg := badChar(l); msg != "" {
			p.errorf(i+1, "%s", msg)
			continue
		}
		lines[i] = fields(l)
		if len(lines[i]) > 0 {
			p.directives++
		}
	}
	// Classes first: a node line may name a class defined further down.
	for i, fs := range lines {
		if len(fs) > 0 && fs[0].text == "class" {
			p.class(i+1, texts(fs[1:]))
		}
	}
	for i, fs := range lines {
		if len(fs) > 0 && fs[0].text != "class" {
			p.directive(i+1, fs[0].text, texts(fs[1:]))
		}
	}
	p.check(opt)
	sort.SliceStable(p.c.diags, func(i, j int) bool { return p.c.diags[i].Line < p.c.diags[j].Line })
	return p.c, p.c.Err()
}

// Load reads (ReadFile: a regular file of at most MaxFileSize bytes) and
// parses the file at path. A read error (wrapping fs.ErrNotExist when
// there is no file; see Default) comes with a nil Config.
func Load(path string, opt Options) (*Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data, opt)
}

func texts(fs []field) []string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.text
	}
	return s
}

// parser builds a Config from lines.
type parser struct {
	c           *Config
	next        int            // number of the next unnumbered node line
	once        map[string]int // single-valued setting → line that last set it
	directives  int            // lines holding a directive, read or not
	ipRangeAt   int            // line of the last iprange line, even a malformed one
	moduleLines []int          // the line of each of c.modules
}

func (p *parser) diag(line int, sev Severity, format string, args ...any) {
	p.c.diags = append(p.c.diags, Diag{File: p.c.file, Line: line, Severity: sev, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.diag(line, Error, format, args...)
}

func (p *parser) warnf(line int, format string, args ...any) {
	p.diag(line, Warning, format, args...)
}

// nargs reports whether args has between lo and hi entries (hi < 0: no
// limit), and an error quoting usage when not.
func (p *parser) nargs(line int, args []string, lo, hi int, usage string) bool {
	switch {
	case len(args) < lo:
		p.errorf(line, "missing arguments; usage: %s", usage)
	case hi >= 0 && len(args) > hi:
		p.errorf(line, "too many arguments; usage: %s", usage)
	default:
		return true
	}
	return false
}

// single warns when the setting key was already set by an earlier line.
func (p *parser) single(line int, key string) {
	if prev, ok := p.once[key]; ok {
		p.warnf(line, "%s repeated; overrides line %d", key, prev)
	}
	p.once[key] = line
}

func (p *parser) directive(line int, name string, args []string) {
	switch name {
	case "nodes":
		p.nodeCount(line, args)
	case "iprange":
		p.ipRange(line, args)
	case "hostrange":
		p.hostRange(line, args)
	case "node":
		p.node(line, args)
	case "ignore":
		p.ignore(line, args)
	case "host":
		p.host(line, args)
	case "kernelimage", "initrdimage", "kernelcommandline":
		p.boot(line, attrOf(name), args)
	case "nodename":
		p.nodename(line, args)
	case "interface":
		p.iface(line, args)
	case "server":
		p.server(line, args)
	case "pingtimeout":
		p.pingTimeout(line, args)
	case "libraries":
		p.libraries(line, args)
	case "bootmodule":
		p.bootModule(line, args)
	case "nodeassign":
		p.nodeAssign(line, args)
	case "ipforward":
		p.ipForward(line, args)
	case "mkfs":
		p.mkfsPolicy(line, args)
	case "masterorder":
		p.masterOrder(line, args)
	case "fsck":
		p.fsckPolicy(line, args)
	default:
		p.warnf(line, "unknown directive %q ignored", name)
	}
}
