package bproc

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/beo-cluster/beo/pkg/wire"
)

// Code is what kind of failure a NodeError or Error is; the message is
// for people. errors.Is matches a few codes against sentinels:
// CodePermission is fs.ErrPermission, CodeNotFound fs.ErrNotExist,
// CodeNodeDown ErrNodeDown.
type Code string

// The codes (pkg/wire defines them on the protocol).
const (
	CodePermission = Code(wire.CodePermission)
	CodeNotFound   = Code(wire.CodeNotFound)
	CodeNodeDown   = Code(wire.CodeNodeDown)
	CodeVersion    = Code(wire.CodeVersion)
	CodeRefused    = Code(wire.CodeRefused)
	CodeInvalid    = Code(wire.CodeInvalid)
	CodeInternal   = Code(wire.CodeInternal)
)

// ErrNodeDown is what errors.Is finds in a failure because a node is not
// available (down, not connected, in a state that takes no work) or was
// lost while working.
var ErrNodeDown = errors.New("node not available")

func (c Code) is(target error) bool {
	switch c {
	case CodePermission:
		return target == fs.ErrPermission
	case CodeNotFound:
		return target == fs.ErrNotExist
	case CodeNodeDown:
		return target == ErrNodeDown
	}
	return false
}

// NodeError is a failure on or about one node: reported by the master or
// the node (Err nil), or met here on the way (Err the cause, a lost
// connection for one). Msg never names the node: Error adds it.
type NodeError struct {
	Node int
	Code Code
	Msg  string
	Err  error
}

func (e *NodeError) Error() string        { return fmt.Sprintf("node %d: %s", e.Node, e.Msg) }
func (e *NodeError) Unwrap() error        { return e.Err }
func (e *NodeError) Is(target error) bool { return e.Code.is(target) }

// Error is a failure the master reported about no one node (bpctl as a
// user, a bplib path that is not absolute). Err is ErrMasterTooOld or
// ErrClientTooOld for CodeVersion, else nil.
type Error struct {
	Code Code
	Msg  string
	Err  error
}

func (e *Error) Error() string        { return e.Msg }
func (e *Error) Unwrap() error        { return e.Err }
func (e *Error) Is(target error) bool { return e.Code.is(target) }

// onNode is a failure met here while working with node n.
func onNode(n int, err error) *NodeError {
	return &NodeError{Node: n, Code: Code(wire.CodeOf(err)), Msg: err.Error(), Err: err}
}

// remote is the failure a reply reports, nil if none: a NodeError about
// the node it names, else an Error. A CodeVersion failure wraps
// ErrMasterTooOld or ErrClientTooOld, by the Version the master says it
// speaks. (A master older than codes names no node and no code.)
func remote(r wire.Result) error {
	if r.Err == "" {
		return nil
	}
	code, msg := Code(r.Code), r.Err
	var cause error
	switch code {
	case "":
		code = CodeInternal
	case CodeVersion:
		cause = ErrMasterTooOld
		if r.Version > wire.Version {
			cause = ErrClientTooOld
		}
		msg = fmt.Sprintf("%v (wire version %d, bpmaster's %d)", cause, wire.Version, r.Version)
	}
	if r.Node != nil {
		return &NodeError{Node: *r.Node, Code: code, Msg: msg, Err: cause}
	}
	return &Error{Code: code, Msg: msg, Err: cause}
}

// remoteOn is remote for an operation on node n: a failure naming no node
// is about n.
func remoteOn(n int, r wire.Result) error {
	if r.Node == nil {
		r.Node = &n
	}
	return remote(r)
}
