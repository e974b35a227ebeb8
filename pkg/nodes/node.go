package nodes

import (
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// DefaultMode is a new node's mode: everybody may run on it.
const DefaultMode os.FileMode = 0111

// modeBits are the bits of a mode the table keeps: the execute bits.
const modeBits os.FileMode = 0111

// Node is one compute node as the table knows it. Values handed out by the
// table are copies: changing one changes nothing in the table.
type Node struct {
	Num       int
	MACs      []string
	Addr      netip.Addr // computed by config; the zero Addr if none
	State     State
	Since     time.Time   // last state change
	Owner     uint32      // uid
	Group     uint32      // gid
	Mode      os.FileMode // only the execute bits: DefaultMode unless root changed it
	Secondary bool        // its primary master is another one: up shows as "[up]"
}

// Display is the state as bpstat shows it: "[up]" for an up node whose
// primary master is another one, else the state's name.
func (n Node) Display() string {
	if n.Secondary && n.State == Up {
		return "[up]"
	}
	return n.State.String()
}

// clone returns a copy of n sharing nothing with it.
func (n Node) clone() Node {
	n.MACs = slices.Clone(n.MACs)
	return n
}

// ControlledHere reports whether this master controls n, the root of
// bpctl's changes: not while it is [up] here (another master is its
// primary, and it obeys only that one — its mode, owner, pinned key and
// session are that master's to change too).
func (n Node) ControlledHere() error {
	if n.Secondary {
		return refuse(n.Num, ErrSecondary, "controlled by another master (%s)", n.Display())
	}
	return nil
}

// CanRun reports whether the caller may start work on n, and if not, why;
// see "Who may use a node" in the package doc.
func (n Node) CanRun(c wire.Cred) error {
	if n.Secondary {
		return refuse(n.Num, ErrSecondary, "controlled by another master (%s)", n.Display())
	}
	if c.UID == 0 {
		if !n.State.connected() {
			return refuse(n.Num, ErrNotAvailable, "not available (%s)", n.State)
		}
		return nil
	}
	if n.State != Up {
		return refuse(n.Num, ErrNotAvailable, "not available to users (%s)", n.State)
	}
	var bit os.FileMode
	switch {
	case c.UID == n.Owner:
		bit = 0100
	case c.GID == n.Group || slices.Contains(c.Groups, n.Group):
		bit = 0010
	default:
		bit = 0001
	}
	if n.Mode&bit == 0 {
		return refuse(n.Num, fs.ErrPermission, "permission denied (mode %s, owner %d, group %d)",
			FormatMode(n.Mode), n.Owner, n.Group)
	}
	return nil
}

// FormatMode writes a node mode the way BProc's bpstat does: ten
// characters, only the execute bits shown, "---x--x--x" for 0111.
func FormatMode(m os.FileMode) string {
	b := []byte("----------")
	for i, bit := range []os.FileMode{0100, 0010, 0001} {
		if m&bit != 0 {
			b[3+3*i] = 'x'
		}
	}
	return string(b)
}
