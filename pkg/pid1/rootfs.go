package pid1

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/cpio"
	"github.com/u-root/u-root/pkg/upath"
)

// Fetch bounds: each attempt gets fetchTimeout; attempts repeat with a
// doubling pause (from fetchRetry) until fetchTotal has passed.
const (
	fetchTimeout = 60 * time.Second
	fetchRetry   = 500 * time.Millisecond
	fetchTotal   = 5 * time.Minute
	maxRootfs    = 4 << 30
)

// fetch GETs url into memory, retrying on failure until fetchTotal.
func fetch(ctx context.Context, log *slog.Logger, client *http.Client, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTotal)
	defer cancel()
	pause := fetchRetry
	for {
		b, err := fetchOnce(ctx, client, url)
		if err == nil {
			return b, nil
		}
		log.Warn("rootfs fetch failed; retrying", "url", url, "err", err, "in", pause)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("fetch %s: %w (last: %v)", url, ctx.Err(), err)
		case <-time.After(pause):
		}
		pause = min(2*pause, 10*time.Second)
	}
}

func fetchOnce(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRootfs+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxRootfs {
		return nil, fmt.Errorf("rootfs larger than %d bytes", maxRootfs)
	}
	if resp.ContentLength >= 0 && int64(len(b)) != resp.ContentLength {
		return nil, fmt.Errorf("short body: %d of %d bytes", len(b), resp.ContentLength)
	}
	return b, nil
}

// unpack writes the newc archive b into root: directories, files,
// symlinks and device nodes with their modes and owners. Members that
// would land outside root are refused, as is a member replacing any path
// in keep (the running binary). An existing non-directory at a member's
// path is replaced.
func unpack(b []byte, root string, keep []string) (int, error) {
	// The reader takes a short archive for a finished one: insist on the
	// trailer so a truncated archive is an error, not half a root.
	if !bytes.Contains(b[max(0, len(b)-1024):], []byte(cpio.Trailer+"\x00")) {
		return 0, errors.New("rootfs archive: no trailer (truncated?)")
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return 0, fmt.Errorf("rootfs archive: %w", err)
	}
	rr := cpio.Newc.Reader(bytes.NewReader(b))
	n := 0
	for {
		rec, err := rr.ReadRecord()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("rootfs archive: %w", err)
		}
		if rec.Name == "." {
			continue
		}
		dst, err := upath.SafeFilepathJoin(root, rec.Name)
		if err != nil {
			return n, fmt.Errorf("rootfs archive: %s: %w", rec.Name, err)
		}
		for _, k := range keep {
			if filepath.Clean(dst) == filepath.Join(root, k) {
				return n, fmt.Errorf("rootfs archive: %s would replace %s", rec.Name, k)
			}
		}
		// A link made by an earlier member must not carry this one out
		// of root (a link "up" → "..", then "up/x").
		if err := inside(realRoot, filepath.Dir(dst)); err != nil {
			return n, fmt.Errorf("rootfs archive: %s: %w", rec.Name, err)
		}
		if fi, err := os.Lstat(dst); err == nil && !fi.IsDir() {
			if err := os.Remove(dst); err != nil {
				return n, fmt.Errorf("rootfs archive: replace %s: %w", rec.Name, err)
			}
		}
		if rec.Mode&cpio.S_IFMT == cpio.S_IFLNK {
			// CreateFileInRoot would chmod through the new link.
			if err := symlink(rec, dst); err != nil {
				return n, fmt.Errorf("rootfs archive: %s: %w", rec.Name, err)
			}
			n++
			continue
		}
		if err := cpio.CreateFileInRoot(rec, root, true); err != nil {
			return n, fmt.Errorf("rootfs archive: %s: %w", rec.Name, err)
		}
		n++
	}
}

func symlink(rec cpio.Record, dst string) error {
	if rec.FileSize > 4096 {
		return errors.New("symlink target too long")
	}
	target := make([]byte, rec.FileSize)
	if _, err := rec.ReadAt(target, 0); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Symlink(string(target), dst); err != nil {
		return err
	}
	return os.Lchown(dst, int(rec.UID), int(rec.GID))
}

// inside checks that dir, with every symbolic link in its existing part
// resolved, lies within realRoot.
func inside(realRoot, dir string) error {
	for {
		real, err := filepath.EvalSymlinks(dir)
		if err == nil {
			if real != realRoot && !strings.HasPrefix(real, realRoot+string(filepath.Separator)) && realRoot != "/" {
				return fmt.Errorf("leads outside the root (to %s)", real)
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if _, err := os.Lstat(dir); err == nil {
			return fmt.Errorf("%s is a dangling link", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}
