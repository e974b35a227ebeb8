package initramfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/beo-cluster/beo/pkg/config"
)

// ForCluster returns o with what the cluster asks for added: the default
// modules plus the config's `bootmodule` lines, and the config's
// `libraries` lines plus the entries of bplib's list file (one path per
// line, # comments; a missing file lists nothing). cfg may be nil (no
// cluster config yet). beoboot and `beo master` both build their boot
// package through it, so the two always agree.
func ForCluster(o Options, cfg *config.Config, libsFile string) (Options, error) {
	if o.BootModules == nil {
		o.BootModules = DefaultModules()
	}
	if cfg != nil {
		o.BootModules = append(o.BootModules, cfg.BootModules()...)
		o.Libraries = append(o.Libraries, cfg.Libraries()...)
		for _, cl := range cfg.CmdLines() {
			if refusesUnsigned(cl.Value) {
				o.SignedModules = true
			}
		}
	}
	if libsFile == "" {
		return o, nil
	}
	list, err := readList(libsFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return o, err
	}
	for _, l := range list {
		if !slices.Contains(o.Libraries, l) {
			o.Libraries = append(o.Libraries, l)
		}
	}
	return o, nil
}

// readList reads a list file: one path per line, # comments.
func readList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// refusesUnsigned reports whether a kernel command line makes the kernel
// refuse unsigned modules (module.sig_enforce, lockdown=): then the
// file systems' modules must keep their signatures (Options.SignedModules).
func refusesUnsigned(cmdline string) bool {
	for _, f := range strings.Fields(cmdline) {
		k, v, _ := strings.Cut(f, "=")
		switch {
		case k == "module.sig_enforce" && (v == "" || v == "1" || v == "y" || v == "Y"):
			return true
		case k == "lockdown" && (v == "integrity" || v == "confidentiality"):
			return true
		}
	}
	return false
}
