package kickback

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/beo-cluster/beo/pkg/nss"
)

// Directory is the master's user database.
type Directory interface {
	// LookupUID returns uid's passwd entry and its groups: the primary
	// group and every group listing the user, each with Members trimmed
	// to the user alone (the primary group to none unless it lists the
	// user). ErrNoUser when uid is unknown.
	LookupUID(ctx context.Context, uid uint32) (nss.User, []nss.Group, error)
}

// ErrNoUser is returned for a uid the directory does not know.
var ErrNoUser = errors.New("no such user")

// Getent looks users up with the master's getent(1), so every NSS source
// the master uses (files, LDAP, NIS, sssd…) answers, though beo itself is
// a static binary that cannot load NSS modules.
type Getent struct {
	Path string // default "getent" from PATH
}

func (g Getent) run(ctx context.Context, args ...string) ([]byte, error) {
	p := g.Path
	if p == "" {
		p = "getent"
	}
	cmd := exec.CommandContext(ctx, p, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 { // key not found
		return nil, ErrNoUser
	}
	if err != nil {
		return nil, fmt.Errorf("getent %s: %w %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// LookupUID implements Directory: getent passwd UID, getent initgroups
// NAME, getent group GID….
func (g Getent) LookupUID(ctx context.Context, uid uint32) (nss.User, []nss.Group, error) {
	out, err := g.run(ctx, "passwd", strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nss.User{}, nil, err
	}
	u, err := nss.ParseUser(firstLine(out))
	if err != nil {
		return nss.User{}, nil, err
	}
	if u.UID != uid {
		return nss.User{}, nil, fmt.Errorf("getent passwd %d answered uid %d", uid, u.UID)
	}
	gids := []string{strconv.FormatUint(uint64(u.GID), 10)}
	if out, err := g.run(ctx, "initgroups", u.Name); err == nil {
		f := strings.Fields(firstLine(out))
		for _, s := range f[min(1, len(f)):] {
			if !slices.Contains(gids, s) {
				gids = append(gids, s)
			}
		}
	} else if !errors.Is(err, ErrNoUser) {
		return nss.User{}, nil, err
	}
	out, err = g.run(ctx, append([]string{"group"}, gids...)...)
	if err != nil && !errors.Is(err, ErrNoUser) { // 2 = some gid had no entry
		return nss.User{}, nil, err
	}
	var groups []nss.Group
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		gr, err := nss.ParseGroup(sc.Text())
		if err != nil {
			continue
		}
		groups = append(groups, trim(gr, u))
	}
	return u, groups, nil
}

// trim keeps only u among g's members.
func trim(g nss.Group, u nss.User) nss.Group {
	t := nss.Group{Name: g.Name, GID: g.GID}
	if slices.Contains(g.Members, u.Name) {
		t.Members = []string{u.Name}
	}
	return t
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}

// Files reads Root/etc/passwd and Root/etc/group directly: for a master
// without getent, and for tests.
type Files struct {
	Root string
}

// LookupUID implements Directory.
func (f Files) LookupUID(ctx context.Context, uid uint32) (nss.User, []nss.Group, error) {
	pw, err := os.ReadFile(filepath.Join(f.Root, nss.PasswdFile))
	if err != nil {
		return nss.User{}, nil, err
	}
	var u nss.User
	found := false
	for _, l := range strings.Split(string(pw), "\n") {
		if x, err := nss.ParseUser(l); err == nil && x.UID == uid {
			u, found = x, true
			break
		}
	}
	if !found {
		return nss.User{}, nil, ErrNoUser
	}
	gr, err := os.ReadFile(filepath.Join(f.Root, nss.GroupFile))
	if err != nil {
		return nss.User{}, nil, err
	}
	var groups []nss.Group
	for _, l := range strings.Split(string(gr), "\n") {
		g, err := nss.ParseGroup(l)
		if err != nil {
			continue
		}
		if g.GID == u.GID || slices.Contains(g.Members, u.Name) {
			groups = append(groups, trim(g, u))
		}
	}
	return u, groups, nil
}
