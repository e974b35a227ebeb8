package initramfs

import (
	"compress/gzip"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Initrd compressions: each is one the Linux kernel unpacks itself
// (CONFIG_RD_GZIP, _LZ4, _ZSTD; Debian enables them all).
const (
	CompressNone = "none"
	CompressGzip = "gzip" // level 1
	CompressLZ4  = "lz4"  // the legacy frame format the kernel reads, HC level 1
	CompressZstd = "zstd" // best compression
)

// DefaultCompression is the initrd's compression when Options leave it
// unset; see the package doc for the measurement behind the choice.
const DefaultCompression = CompressLZ4

// Compressions lists the accepted Options.Compression values.
func Compressions() []string {
	return []string{CompressNone, CompressGzip, CompressLZ4, CompressZstd}
}

// checkCompression reports an unknown compression name.
func checkCompression(c string) error {
	if !slices.Contains(Compressions(), c) {
		return fmt.Errorf("initrd compression %q: want one of %s", c, strings.Join(Compressions(), ", "))
	}
	return nil
}

// compressTo returns a writer compressing into w with c, and the function
// that finishes the stream. The output depends only on the input: no
// names, times or concurrency-dependent framing.
func compressTo(w io.Writer, c string) (io.Writer, func() error, error) {
	switch c {
	case CompressNone:
		return w, func() error { return nil }, nil
	case CompressGzip:
		zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
		if err != nil {
			return nil, nil, err
		}
		return zw, zw.Close, nil
	case CompressLZ4:
		zw := lz4.NewWriter(w)
		if err := zw.Apply(lz4.LegacyOption(true), lz4.CompressionLevelOption(lz4.Level1), lz4.ConcurrencyOption(1)); err != nil {
			return nil, nil, err
		}
		return zw, zw.Close, nil
	case CompressZstd:
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return zw, zw.Close, nil
	}
	return nil, nil, checkCompression(c)
}
