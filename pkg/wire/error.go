package wire

import (
	"errors"
	"fmt"
	"io/fs"
)

// Code says what kind of failure a reply's Err is, for programs; Err is
// for people. A reply with Err set has a Code; "" (a sender older than
// codes) reads as CodeInternal.
type Code string

const (
	// CodePermission: the caller may not (the node's mode, not root, a
	// file the caller cannot read or write).
	CodePermission Code = "permission"
	// CodeNotFound: no such node, file, program or process.
	CodeNotFound Code = "not-found"
	// CodeNodeDown: the node is not available (down, not connected, in a
	// state that takes no work, controlled by another master) or was lost
	// while working.
	CodeNodeDown Code = "node-down"
	// CodeVersion: the sender speaks another protocol version than the
	// request (Result.Version is the sender's), or does not know its op.
	CodeVersion Code = "version"
	// CodeRefused: the master declines to do it this way and the client
	// can do it another (SourcesRefused).
	CodeRefused Code = "refused"
	// CodeInvalid: a malformed request (an empty command, an exec id in
	// use, a state or action that does not exist or is not allowed).
	CodeInvalid Code = "invalid"
	// CodeInternal: anything else.
	CodeInternal Code = "internal"
)

// Error is a failure on its way into a reply: the master and the slave
// return one where they know what failed and on which node, Fail puts it
// in a Result (Err without the node, Code, Node), and Result.Failure
// takes it out again on a hop that forwards it.
type Error struct {
	Code Code // "": CodeOf(Err)
	Node *int // the node it is about; nil: none
	Err  error
}

// NodeErrorf returns an Error about node n.
func NodeErrorf(n int, code Code, format string, a ...any) *Error {
	return &Error{Code: code, Node: &n, Err: fmt.Errorf(format, a...)}
}

// OnNode returns err as an Error about node n, keeping its Code, unless it
// is about a node already.
func OnNode(n int, err error) error {
	var e *Error
	if errors.As(err, &e) && e.Node != nil {
		return err
	}
	return &Error{Code: CodeOf(err), Node: &n, Err: err}
}

// Errorf returns an Error about no one node.
func Errorf(code Code, format string, a ...any) *Error {
	return &Error{Code: code, Err: fmt.Errorf(format, a...)}
}

func (e *Error) Error() string {
	if e.Node != nil {
		return fmt.Sprintf("node %d: %v", *e.Node, e.Err)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// CodeOf classifies err: the Code of the first Error in its chain that
// has one, else CodePermission or CodeNotFound for what wraps
// fs.ErrPermission or fs.ErrNotExist (EACCES, EPERM, ENOENT), else
// CodeInternal.
func CodeOf(err error) Code {
	for e := err; e != nil; {
		var we *Error
		if !errors.As(e, &we) {
			break
		}
		if we.Code != "" {
			return we.Code
		}
		e = we.Err
	}
	switch {
	case errors.Is(err, fs.ErrPermission):
		return CodePermission
	case errors.Is(err, fs.ErrNotExist):
		return CodeNotFound
	}
	return CodeInternal
}

// Fail returns the Result reporting err: its Code, and, when err is an
// Error about a node, that node and the message without it. (An Error
// wrapped in more context is reported as its whole text, about no node:
// add the context inside, NodeErrorf(n, code, "put %s: %w", …).)
func Fail(err error) Result {
	r := Result{Err: err.Error(), Code: CodeOf(err)}
	if e, ok := err.(*Error); ok && e.Node != nil {
		n := *e.Node
		r.Node, r.Err = &n, e.Err.Error()
	}
	return r
}

// Failure returns the failure r reports as an *Error, or nil if it
// reports none.
func (r Result) Failure() error {
	if r.Err == "" {
		return nil
	}
	code := r.Code
	if code == "" {
		code = CodeInternal
	}
	return &Error{Code: code, Node: r.Node, Err: errors.New(r.Err)}
}
