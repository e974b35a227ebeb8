package nss

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// User is a passwd entry. The password field is always "x": no hash ever
// leaves the master.
type User struct {
	Name  string `json:"name"`
	UID   uint32 `json:"uid"`
	GID   uint32 `json:"gid"`
	Gecos string `json:"gecos,omitempty"`
	Home  string `json:"home"`
	Shell string `json:"shell"`
}

// Group is a group entry; Members may be trimmed to the one user it was
// fetched for.
type Group struct {
	Name    string   `json:"name"`
	GID     uint32   `json:"gid"`
	Members []string `json:"members,omitempty"`
}

// Line formats u as a passwd line (without newline).
func (u User) Line() string {
	return fmt.Sprintf("%s:x:%d:%d:%s:%s:%s", u.Name, u.UID, u.GID, u.Gecos, u.Home, u.Shell)
}

// Line formats g as a group line (without newline).
func (g Group) Line() string {
	return fmt.Sprintf("%s:x:%d:%s", g.Name, g.GID, strings.Join(g.Members, ","))
}

// ParseUser parses a passwd line (name:pw:uid:gid:gecos:home:shell).
func ParseUser(line string) (User, error) {
	f := strings.Split(strings.TrimRight(line, "\n"), ":")
	if len(f) != 7 {
		return User{}, fmt.Errorf("passwd line: want 7 fields, got %d", len(f))
	}
	uid, err1 := parseID(f[2])
	gid, err2 := parseID(f[3])
	if err1 != nil || err2 != nil {
		return User{}, fmt.Errorf("passwd line for %q: bad uid or gid", f[0])
	}
	u := User{Name: f[0], UID: uid, GID: gid, Gecos: f[4], Home: f[5], Shell: f[6]}
	return u, u.Validate()
}

// ParseGroup parses a group line (name:pw:gid:member,member…).
func ParseGroup(line string) (Group, error) {
	f := strings.Split(strings.TrimRight(line, "\n"), ":")
	if len(f) != 4 {
		return Group{}, fmt.Errorf("group line: want 4 fields, got %d", len(f))
	}
	gid, err := parseID(f[2])
	if err != nil {
		return Group{}, fmt.Errorf("group line for %q: bad gid", f[0])
	}
	g := Group{Name: f[0], GID: gid}
	if f[3] != "" {
		g.Members = strings.Split(f[3], ",")
	}
	return g, g.Validate()
}

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

// Validate refuses entries that cannot be written back as one line:
// empty or odd names, ':' ',' or control characters in any field.
func (u User) Validate() error {
	if !validAccount(u.Name) {
		return fmt.Errorf("bad user name %q", u.Name)
	}
	for _, s := range []string{u.Gecos, u.Home, u.Shell} {
		if strings.ContainsAny(s, ":\n\r\x00") {
			return fmt.Errorf("user %s: field %q holds ':' or a control character", u.Name, s)
		}
	}
	return nil
}

// Validate refuses a group that cannot be written back as one line.
func (g Group) Validate() error {
	if !validAccount(g.Name) {
		return fmt.Errorf("bad group name %q", g.Name)
	}
	for _, m := range g.Members {
		if !validAccount(m) {
			return fmt.Errorf("group %s: bad member %q", g.Name, m)
		}
	}
	return nil
}

// validAccount: 1–256 bytes, no ':', ',', space, control character, and
// not starting with '-', '+' or '#' (NIS compat markers, comments).
func validAccount(s string) bool {
	if s == "" || len(s) > 256 || strings.ContainsAny(s[:1], "-+#") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == ':' || c == ',' || c == 0x7f {
			return false
		}
	}
	return true
}

// UpsertUser makes root's etc/passwd hold u: a line with u's uid or name is
// replaced (the master is authoritative for the users it serves), else u
// is appended. Comments and other lines are kept; the write is atomic.
func UpsertUser(root string, u User) (bool, error) {
	if err := u.Validate(); err != nil {
		return false, err
	}
	return updateLines(filepath.Join(root, PasswdFile), func(lines []string) []string {
		out := lines[:0:0]
		for _, l := range lines {
			if o, err := ParseUser(l); err == nil && (o.UID == u.UID || o.Name == u.Name) {
				continue
			}
			out = append(out, l)
		}
		return append(out, u.Line())
	})
}

// UpsertGroup makes root's etc/group hold g: a line with g's gid or name
// is replaced, keeping its members and adding g's; else g is appended.
func UpsertGroup(root string, g Group) (bool, error) {
	if err := g.Validate(); err != nil {
		return false, err
	}
	return updateLines(filepath.Join(root, GroupFile), func(lines []string) []string {
		members := slices.Clone(g.Members)
		out := lines[:0:0]
		at := -1
		for _, l := range lines {
			if o, err := ParseGroup(l); err == nil && (o.GID == g.GID || o.Name == g.Name) {
				if at < 0 {
					at = len(out)
					out = append(out, "")
				}
				for _, m := range o.Members {
					if !slices.Contains(members, m) {
						members = append(members, m)
					}
				}
				continue
			}
			out = append(out, l)
		}
		ng := Group{Name: g.Name, GID: g.GID, Members: members}
		if at < 0 {
			return append(out, ng.Line())
		}
		out[at] = ng.Line()
		return out
	})
}

// updateLines rewrites path line by line with edit, atomically, when the
// result differs.
func updateLines(path string, edit func([]string) []string) (bool, error) {
	return updateFile(path, func(src []byte) ([]byte, error) {
		s := string(src)
		var lines []string
		if s != "" {
			lines = strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		}
		lines = edit(lines)
		return []byte(strings.Join(lines, "\n") + "\n"), nil
	})
}
