package beoboot

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/applets"
)

func TestCompressFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the usage error
	}{
		{[]string{"-compress", "bzip2"}, `-compress "bzip2": want one of none, gzip, lz4, zstd`},
		{[]string{"-gzip", "-compress", "lz4"}, "-gzip and -compress lz4 disagree"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		var out, errb bytes.Buffer
		err := Applets(nil).Run(context.Background(), tc.args, applets.IO{In: strings.NewReader(""), Out: &out, Err: &errb})
		var u *applets.Usage
		if !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("beoboot %q: err %v, want a usage error with %q", tc.args, err, tc.want)
		}
	}
}
