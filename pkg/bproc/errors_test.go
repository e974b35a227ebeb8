package bproc

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/beo-cluster/beo/pkg/wire"
)

func TestRemoteErrors(t *testing.T) {
	two := 2
	err := remoteOn(5, wire.Result{Err: "permission denied (mode ---x------, owner 0, group 0)", Code: wire.CodePermission, Node: &two})
	var ne *NodeError
	if !errors.As(err, &ne) || ne.Node != 2 || ne.Code != CodePermission || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("a node's refusal: got %#v", err)
	}
	if got, want := err.Error(), "node 2: permission denied (mode ---x------, owner 0, group 0)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := remoteOn(5, wire.Result{Err: "not connected", Code: wire.CodeNodeDown}); !errors.As(err, &ne) || ne.Node != 5 || !errors.Is(err, ErrNodeDown) {
		t.Errorf("a failure naming no node, on node 5: got %#v", err)
	}
	err = remote(wire.Result{Err: "permission denied: only root may change nodes", Code: wire.CodePermission})
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, fs.ErrPermission) || err.Error() != "permission denied: only root may change nodes" {
		t.Errorf("a failure about no node: got %#v", err)
	}
	if err := remote(wire.Result{Err: "old"}); !errors.As(err, &e) || e.Code != CodeInternal {
		t.Errorf("no code: got %#v, want CodeInternal", err)
	}
	if err := remote(wire.Result{Code: wire.CodeInternal}); err != nil {
		t.Errorf("no failure: got %v", err)
	}
}
