package xfer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// reader wraps a tar.Reader and tells a complete archive from a cut one.
//
// archive/tar reports io.EOF both at the end-of-archive marker and when the
// input simply stops at an entry boundary, so a sender that died between
// two files would look like a finished transfer. reader counts the bytes
// tar consumes (tar.Reader reads its input unbuffered) and how many of the
// last ones were zero: the archive is complete only if everything after the
// last entry's data is at least one all-zero block.
type reader struct {
	tr      *tar.Reader
	c       counter
	lastEnd int64 // offset just past the last entry's data and padding
}

func newReader(r io.Reader) *reader {
	rd := &reader{}
	rd.c.r = r
	rd.tr = tar.NewReader(&rd.c)
	return rd
}

// next returns the next header, io.EOF at a proper end of archive, and
// ErrTruncated for a stream that stopped early.
func (rd *reader) next() (*tar.Header, error) {
	h, err := rd.tr.Next()
	if errors.Is(err, io.EOF) {
		tail := rd.c.n - rd.lastEnd
		if tail < blockSize || rd.c.zeros < tail {
			return nil, ErrTruncated
		}
		return nil, io.EOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, ErrTruncated
	}
	if err != nil {
		return nil, fmt.Errorf("bad archive: %w", err)
	}
	rd.lastEnd = rd.c.n
	if hasData(h.Typeflag) && h.Size > 0 {
		if h.Size > math.MaxInt64-2*blockSize {
			return nil, fmt.Errorf("bad archive: %s: size %d", h.Name, h.Size)
		}
		rd.lastEnd += (h.Size + blockSize - 1) &^ (blockSize - 1)
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return nil, fmt.Errorf("%s: sparse files are not supported", h.Name)
		}
	}
	if h.Typeflag == tar.TypeGNUSparse {
		return nil, fmt.Errorf("%s: sparse files are not supported", h.Name)
	}
	return h, nil
}

// hasData reports whether tar.Reader takes an entry of this type to be
// followed by Size bytes of data (it ignores Size for the others).
func hasData(t byte) bool {
	switch t {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo,
		tar.TypeXGlobalHeader: // a global header's data is consumed by Next
		return false
	}
	return true
}

// Read reads the current entry's data; a short entry is ErrTruncated.
func (rd *reader) Read(p []byte) (int, error) {
	n, err := rd.tr.Read(p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = ErrTruncated
	}
	return n, err
}

// counter counts bytes read and the run of zero bytes at their end.
type counter struct {
	r     io.Reader
	n     int64
	zeros int64
}

func (c *counter) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	i := k - 1
	for i >= 0 && p[i] == 0 {
		i--
	}
	if i < 0 {
		c.zeros += int64(k)
	} else {
		c.zeros = int64(k - 1 - i)
	}
	return k, err
}

// Append copies every entry of the tar stream r into tw, for merging
// several sources into one transfer, and checks that r was complete: a
// stream cut short is ErrTruncated and tw is left unfinished, so the
// merged stream cannot look complete either. Only regular files,
// directories and symbolic links are carried; other entries are skipped.
// Names are not checked here: the receiver's Unpack does that.
func Append(tw *tar.Writer, r io.Reader) error {
	rd := newReader(r)
	for {
		h, err := rd.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeDir, tar.TypeSymlink:
		default:
			continue
		}
		h.Format = tar.FormatUnknown // let the writer pick what fits
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: write archive: %w", h.Name, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if _, err := copyBulk(tw, rd); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
}
