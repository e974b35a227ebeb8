package pid1

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// loadModules loads every module the initrd's modules.dep lists (beoboot
// puts only the node's drivers there), dependencies first, through
// u-root's kmodule (finit_module). A module that fails is logged and the
// rest still load: one broken driver must not keep the node off the
// network.
func loadModules(log *slog.Logger, root string) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		log.Error("uname", "err", err)
		return
	}
	rel := unix.ByteSliceToString(u.Release[:])
	names, err := depNames(filepath.Join(root, "lib/modules", rel, "modules.dep"))
	if err != nil {
		log.Error("kernel modules", "release", rel, "err", err)
		return
	}
	p, err := kmodule.NewProber(kmodule.ProbeOpts{RootDir: root, KVer: rel})
	if err != nil {
		log.Error("kernel modules", "release", rel, "err", err)
		return
	}
	start := time.Now()
	loaded := 0
	for _, n := range names {
		if err := p.Probe(n, ""); err != nil {
			log.Warn("module not loaded", "module", n, "err", err)
			continue
		}
		loaded++
	}
	log.Info("kernel modules loaded", "count", loaded, "of", len(names), "took", time.Since(start).Round(time.Millisecond))
}

// depNames returns the module names in a modules.dep, in file order.
func depNames(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		mod, _, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		b := path.Base(strings.TrimSpace(mod))
		names = append(names, b[:len(b)-len(path.Ext(b))])
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return names, nil
}
