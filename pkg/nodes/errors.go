package nodes

import (
	"errors"
	"fmt"

	"github.com/beo-cluster/beo/pkg/wire"
)

// Errors the table's refusals wrap, for errors.Is. A refusal for lack of
// privilege wraps fs.ErrPermission.
var (
	ErrNoNode       = errors.New("no such node")
	ErrTransition   = errors.New("state change not allowed")
	ErrNotAvailable = errors.New("node not available")
	ErrSecondary    = errors.New("node controlled by another master")
)

// refusal is a refusal's message, wrapping its kind.
type refusal struct {
	kind error
	msg  string
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.kind }

// refuse returns a refusal about one node: a wire.Error ("node 3: " +
// msg) with the Code of kind, so the master reports it as data.
func refuse(node int, kind error, format string, args ...any) error {
	var code wire.Code // "": fs.ErrPermission's, by wire.CodeOf
	switch kind {
	case ErrNoNode:
		code = wire.CodeNotFound
	case ErrTransition:
		code = wire.CodeInvalid
	case ErrNotAvailable, ErrSecondary:
		code = wire.CodeNodeDown
	}
	return &wire.Error{Code: code, Node: &node, Err: &refusal{kind: kind, msg: fmt.Sprintf(format, args...)}}
}
