package config

import "fmt"

// Severity says whether a diagnostic makes the file unusable.
type Severity int

const (
	// Warning: the line was ignored or is suspicious; the rest is usable.
	Warning Severity = iota
	// Error: the file must be fixed before a cluster trusts it.
	Error
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// Diag is one problem found in a config file, tied to the line it is on.
type Diag struct {
	File     string
	Line     int // 1-based
	Severity Severity
	Msg      string
}

// String returns "file:line: message".
func (d Diag) String() string { return fmt.Sprintf("%s:%d: %s", d.File, d.Line, d.Msg) }

// Error returns the same text as String, so a Diag is an error.
func (d Diag) Error() string { return d.String() }

// DiagError is what Parse returns when a file has error-severity
// diagnostics. Diags holds those errors in line order; errors.As finds each
// one as a Diag.
type DiagError struct {
	Diags []Diag
}

func (e *DiagError) Error() string {
	switch len(e.Diags) {
	case 0:
		return "config error"
	case 1:
		return e.Diags[0].Error()
	}
	return fmt.Sprintf("%v (and %d more errors)", e.Diags[0], len(e.Diags)-1)
}

// Unwrap returns the diagnostics, one error each.
func (e *DiagError) Unwrap() []error {
	errs := make([]error, len(e.Diags))
	for i, d := range e.Diags {
		errs[i] = d
	}
	return errs
}
