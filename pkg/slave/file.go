package slave

import (
	"net"
	"strings"
	"time"

	"github.com/beo-cluster/beo/pkg/creds"
	"github.com/beo-cluster/beo/pkg/wire"
	"github.com/beo-cluster/beo/pkg/xfer"
)

// put lands a bpcp tar stream at Root+File.Path as the caller
// (pkg/xfer's Unpack, under pkg/creds), then replies with a Result.
//
// If the path is an existing directory, the entries land inside it (cp's
// "into"); otherwise the archive's single top-level entry becomes the path
// itself: one file, or with Recursive a directory tree. The copy lands
// whole or not at all: every file is staged under a temporary name, its
// data synced, and all are renamed into place only once the archive's end
// has arrived intact; a failure removes every temporary. Every file
// operation goes through an os.Root at the target, so no symbolic link
// leads a write out of it. With Preserve, mode (set-id bits included),
// mtime and, for a root caller, owner come from the archive; otherwise
// the mode is the archive's masked by 0777 and the mtime is now.
func (ss *session) put(st net.Conn, f *wire.File) {
	log := ss.log.With("node", ss.node, "op", "put", "path", f.Path, "uid", f.Cred.UID)
	dst := rooted(ss.cfg.Root, f.Path)
	if strings.HasSuffix(f.Path, "/") {
		dst += "/" // must end up a directory
	}
	err := creds.Do(f.Cred, func() error {
		return xfer.Unpack(st, dst, xfer.Options{Recursive: f.Recursive, Preserve: f.Preserve})
	})
	if err != nil {
		log.Warn("put failed", "err", err)
		ss.refuse(st, err) // xfer names the file
		return
	}
	drain(st) // whatever follows the archive's end, up to the master's close
	st.SetWriteDeadline(time.Now().Add(drainTimeout))
	if err := wire.Write(st, wire.Result{}); err != nil {
		log.Warn("put: result not delivered", "err", err)
	}
	st.Close()
}

// get answers with a Result, then a tar stream of Root+File.Path read as
// the caller, packed by pkg/xfer: one entry named after the path's last
// element, and with Recursive for a directory everything below it as
// NAME/…. A missing or unreadable path, or a directory without
// Recursive, is a Result error (xfer.Scan checks the whole tree before
// anything is sent). A failure after the Result (a file vanishing
// mid-walk) cuts the stream short, so the reader sees a truncated
// archive, never a silently partial one.
func (ss *session) get(st net.Conn, f *wire.File) {
	log := ss.log.With("node", ss.node, "op", "get", "path", f.Path, "uid", f.Cred.UID)
	src := rooted(ss.cfg.Root, f.Path)
	replied := false
	err := creds.Do(f.Cred, func() error {
		p, err := xfer.Scan([]string{src}, xfer.Options{Recursive: f.Recursive})
		if err != nil {
			return err
		}
		replied = true
		if err := wire.Write(st, wire.Result{}); err != nil {
			return err
		}
		return p.Write(st)
	})
	switch {
	case err != nil && !replied:
		log.Warn("get failed", "err", err)
		ss.refuse(st, err) // xfer names the file
	case err != nil:
		log.Warn("get cut short", "err", err)
		st.Close()
	default:
		st.Close()
	}
}
