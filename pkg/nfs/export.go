package nfs

import (
	"fmt"
	"math/bits"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/beo-cluster/beo/pkg/fstab"
)

// Nobody is the uid and gid root on a node becomes (root squash).
const Nobody = 65534

// Export is one directory the master serves to the cluster: the export
// model both servers are rendered from.
type Export struct {
	Path    string         // on the master, absolute; also the NFSv4 pseudo path
	RW      bool           // read-write; read-only otherwise
	Clients []netip.Prefix // who may mount it: the cluster's node range
	// Root squash is always on: root on a node acts as AnonUID:AnonGID.
	AnonUID, AnonGID uint32
	Lines            []string // the fstab lines (file:line) that need it
}

// Exports derives the exports the fstab tables need: one per path that
// an NFS line mounts from the master (Entry.Export), read-write when any
// such line is, for clients. The result is sorted by path.
func Exports(tables []*fstab.Table, master netip.Addr, clients []netip.Prefix) []Export {
	by := map[string]*Export{}
	for _, t := range tables {
		if t == nil {
			continue
		}
		for _, e := range t.Entries {
			p, rw, ok := e.Export(master)
			if !ok {
				continue
			}
			x := by[p]
			if x == nil {
				x = &Export{Path: p, Clients: slices.Clone(clients), AnonUID: Nobody, AnonGID: Nobody}
				by[p] = x
			}
			x.RW = x.RW || rw
			x.Lines = append(x.Lines, fmt.Sprintf("%s:%d", t.File, e.Line))
		}
	}
	out := make([]Export, 0, len(by))
	for _, x := range by {
		out = append(out, *x)
	}
	slices.SortFunc(out, func(a, b Export) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// Servable splits exports into those the master can serve and those it
// cannot, with why: the path must be a directory (after symbolic links)
// and not "/", which NFSv4's pseudo root stands for.
func Servable(exports []Export) (ok []Export, refused map[string]string) {
	refused = map[string]string{}
	for _, x := range exports {
		if x.Path == "/" {
			refused[x.Path] = "the master's root is never exported"
			continue
		}
		fi, err := os.Stat(x.Path)
		switch {
		case err != nil && os.IsNotExist(err):
			refused[x.Path] = "no such directory on the master"
		case err != nil:
			refused[x.Path] = err.Error()
		case !fi.IsDir():
			refused[x.Path] = "not a directory on the master"
		default:
			ok = append(ok, x)
		}
	}
	return ok, refused
}

// Prefixes covers the addresses from..to (IPv4, inclusive) with the
// fewest prefixes: what an export lists as its clients for an iprange.
func Prefixes(from, to netip.Addr) []netip.Prefix {
	from, to = from.Unmap(), to.Unmap()
	if !from.Is4() || !to.Is4() || to.Less(from) {
		return nil
	}
	lo, hi := u32(from), u32(to)
	var out []netip.Prefix
	for {
		// The largest block starting at lo that is aligned and ends by hi.
		size := bits.TrailingZeros32(lo) // 32 for 0
		for size > 0 && uint64(lo)+(uint64(1)<<size)-1 > uint64(hi) {
			size--
		}
		a := netip.AddrFrom4([4]byte{byte(lo >> 24), byte(lo >> 16), byte(lo >> 8), byte(lo)})
		out = append(out, netip.PrefixFrom(a, 32-size))
		next := uint64(lo) + uint64(1)<<size
		if next > uint64(hi) {
			return out
		}
		lo = uint32(next)
	}
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// clientList is the clients as the servers write them.
func clientList(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		if p.Bits() == p.Addr().BitLen() {
			out[i] = p.Addr().String()
		} else {
			out[i] = p.String()
		}
	}
	return out
}

// ExportsFile renders exports as an exports(5) file for the kernel's NFS
// server (nfs-kernel-server's exportfs reads it from /etc/exports.d).
func ExportsFile(exports []Export) []byte {
	var b strings.Builder
	b.WriteString("# Written by beo master from the cluster's fstab files; do not edit:\n# it is rewritten whenever they change, and removed when beo master stops.\n")
	for _, x := range exports {
		access := "ro"
		if x.RW {
			access = "rw"
		}
		fmt.Fprintf(&b, "# for %s\n%s", strings.Join(x.Lines, ", "), escapePath(x.Path))
		for _, c := range clientList(x.Clients) {
			fmt.Fprintf(&b, " %s(%s,sync,no_subtree_check,root_squash,anonuid=%d,anongid=%d,sec=sys)", c, access, x.AnonUID, x.AnonGID)
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// escapePath writes a path for exports(5): octal escapes for spaces and
// the like.
func escapePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c == '\\' || c == '#' || c == '"' || c >= 0x7f {
			fmt.Fprintf(&b, "\\%03o", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// GaneshaConfig renders exports as an nfs-ganesha configuration: NFSv4 only
// (no rpcbind, NLM, rquota or UDP), bound to bind, numeric owners (nodes
// have no idmapper), no grace period, the VFS FSAL, state under runDir.
// ids gives each path its Export_Id (stable across reloads).
func GaneshaConfig(exports []Export, bind netip.Addr, port int, runDir string, ids map[string]int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by beo master from the cluster's fstab files; rewritten when they change.
NFS_CORE_PARAM {
	Protocols = 4;
	NFS_Port = %d;
	Bind_Addr = %s;
	Enable_NLM = false;
	Enable_RQUOTA = false;
	Enable_UDP = false;
}
NFSV4 {
	Graceless = true;
	Only_Numeric_Owners = true;
	RecoveryRoot = %s;
}
NFS_KRB5 {
	Active_krb5 = false;
}
`, port, bind, quote(filepath.Join(runDir, "recovery")))
	for _, x := range exports {
		access := "RO"
		if x.RW {
			access = "RW"
		}
		fmt.Fprintf(&b, `# for %s
EXPORT {
	Export_Id = %d;
	Path = %s;
	Pseudo = %s;
	Access_Type = None;
	Squash = Root_Squash;
	Anonymous_Uid = %d;
	Anonymous_Gid = %d;
	SecType = sys;
	Protocols = 4;
	Transports = TCP;
	CLIENT {
		Clients = %s;
		Access_Type = %s;
		Protocols = 4;
	}
	FSAL {
		Name = VFS;
	}
}
`, strings.Join(x.Lines, ", "), ids[x.Path], quote(x.Path), quote(x.Path), x.AnonUID, x.AnonGID, strings.Join(clientList(x.Clients), ", "), access)
	}
	return []byte(b.String())
}

// quote writes a ganesha string value.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
