package wire

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"
)

func TestFail(t *testing.T) {
	three := 3
	notExist := &os.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}
	for _, tt := range []struct {
		name string
		err  error
		want Result
	}{
		{"about a node", NodeErrorf(3, CodeNodeDown, "not connected"), Result{Err: "not connected", Code: CodeNodeDown, Node: &three}},
		{"code from the cause", NodeErrorf(3, "", "/bin/x: %w", fs.ErrPermission), Result{Err: "/bin/x: permission denied", Code: CodePermission, Node: &three}},
		{"not found", OnNode(3, notExist), Result{Err: "open /x: file does not exist", Code: CodeNotFound, Node: &three}},
		{"about no node", Errorf(CodeRefused, "%s", SourcesRefused), Result{Err: SourcesRefused, Code: CodeRefused}},
		{"plain", errors.New("boom"), Result{Err: "boom", Code: CodeInternal}},
		{"wrapped: whole text", fmt.Errorf("stage: %w", NodeErrorf(3, CodeNodeDown, "gone")), Result{Err: "stage: node 3: gone", Code: CodeNodeDown}},
	} {
		got := Fail(tt.err)
		if got.Err != tt.want.Err || got.Code != tt.want.Code || (got.Node == nil) != (tt.want.Node == nil) || got.Node != nil && *got.Node != *tt.want.Node {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
		// And back, as a hop that forwards it reads it.
		back := got.Failure()
		if back.Error() != tt.err.Error() {
			t.Errorf("%s: Failure: got %q, want %q", tt.name, back, tt.err)
		}
		if c := CodeOf(back); c != tt.want.Code {
			t.Errorf("%s: Failure's code: got %q, want %q", tt.name, c, tt.want.Code)
		}
	}
	if err := (Result{}).Failure(); err != nil {
		t.Errorf("success: Failure got %v", err)
	}
	if err := OnNode(4, NodeErrorf(3, CodeNodeDown, "x")); err.Error() != "node 3: x" {
		t.Errorf("OnNode of an error about a node: got %q, want it unchanged", err)
	}
}
