package nodes

import (
	"errors"
	"fmt"
)

// Errors the table's refusals wrap, for errors.Is. A refusal for lack of
// privilege wraps fs.ErrPermission.
var (
	ErrNoNode       = errors.New("no such node")
	ErrTransition   = errors.New("state change not allowed")
	ErrNotAvailable = errors.New("node not available")
	ErrSecondary    = errors.New("node controlled by another master")
)

// nodeError is a refusal about one node: "node 3: " + msg, wrapping kind.
type nodeError struct {
	node int
	kind error
	msg  string
}

func (e *nodeError) Error() string { return fmt.Sprintf("node %d: %s", e.node, e.msg) }
func (e *nodeError) Unwrap() error { return e.kind }

func refuse(node int, kind error, format string, args ...any) error {
	return &nodeError{node: node, kind: kind, msg: fmt.Sprintf(format, args...)}
}
