// Package beoboot implements beoboot, which builds the compute nodes'
// boot package from the running beo binary (see package initramfs):
//
//	beoboot [-o DIR] [-k KERNEL] [-m MODULES] [-config FILE] [-keys DIR] [-libs FILE] [-compress none|gzip|lz4|zstd] [-f]
//
// The kernel is the running one (/boot/vmlinuz-$(uname -r)) unless -k
// names another; its modules come from /lib/modules/<its release> unless
// -m names the tree. The config's bootmodule lines add drivers to the
// defaults, its libraries lines and bplib's list (-libs) are prestaged
// into the rootfs, and the node credential comes from the master's key
// directory (created there if missing, as bpmaster would). The initrd is
// compressed with lz4 unless -compress says otherwise (-gzip is short for
// -compress gzip); the kernel unpacks any of them. Without -f the package
// is rewritten only when something in it would change.
//
// It prints one line: the directory, whether it was rebuilt, the kernel
// release and the number of modules.
package beoboot

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/initramfs"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/link"
)

const usage = "usage: beoboot [-o DIR] [-k KERNEL] [-m MODULES] [-config FILE] [-keys DIR] [-libs FILE] [-compress none|gzip|lz4|zstd] [-f]"

// Applets lists the applet names of the dispatch table; main.go passes
// its own, and each gets a /bin symlink in the initrd.
type Applets func() []string

// Run is the beoboot applet.
func (names Applets) Run(ctx context.Context, args []string, stdio applets.IO) error {
	fs := applets.NewFlagSet("beoboot", usage, stdio.Err)
	o := initramfs.Options{}
	fs.StringVar(&o.Dir, "o", initramfs.DefaultDir, "output directory")
	fs.StringVar(&o.Kernel, "k", "", "kernel image (default: the running kernel's /boot/vmlinuz-RELEASE)")
	fs.StringVar(&o.Modules, "m", "", "module tree (default: /lib/modules/RELEASE of the kernel)")
	cfgPath := fs.String("config", config.DefaultPath, "cluster config (bootmodule and libraries lines)")
	fs.StringVar(&o.Keys, "keys", "/etc/beowulf/keys", "the master's key directory")
	libs := fs.String("libs", "/etc/beowulf/libraries", "bplib's list of prestaged libraries")
	fs.StringVar(&o.Compression, "compress", initramfs.DefaultCompression, "initrd compression: "+strings.Join(initramfs.Compressions(), ", "))
	gz := fs.Bool("gzip", false, "short for -compress gzip")
	force := fs.Bool("f", false, "rebuild even if nothing changed")
	if err := applets.ParseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &applets.Usage{Line: usage, Msg: "unexpected arguments"}
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if *gz {
		if explicit["compress"] && o.Compression != initramfs.CompressGzip {
			return &applets.Usage{Line: usage, Msg: "-gzip and -compress " + o.Compression + " disagree"}
		}
		o.Compression = initramfs.CompressGzip
	}
	if !slices.Contains(initramfs.Compressions(), o.Compression) {
		return &applets.Usage{Line: usage, Msg: fmt.Sprintf("-compress %q: want one of %s", o.Compression, strings.Join(initramfs.Compressions(), ", "))}
	}
	o.Log = slog.New(slog.NewTextHandler(stdio.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if names != nil {
		o.Applets = names()
	}
	cfg, err := config.Load(*cfgPath, config.Options{})
	switch {
	case err == nil:
	case errors.Is(err, os.ErrNotExist) && !explicit["config"]:
		cfg = nil // no cluster config yet: defaults
	default:
		return err
	}
	if explicit["libs"] {
		if _, err := os.Stat(*libs); err != nil {
			return err
		}
	}
	if o, err = initramfs.ForCluster(o, cfg, *libs); err != nil {
		return err
	}
	if _, err := link.EnsureMasterKeys(o.Keys); err != nil {
		return err
	}
	changed := true
	if *force {
		err = initramfs.Build(ctx, o)
	} else {
		changed, err = initramfs.Ensure(ctx, o)
	}
	if err != nil {
		return err
	}
	m, err := initramfs.ReadManifest(o.Dir)
	if err != nil {
		return err
	}
	state := "up to date"
	if changed {
		state = "rebuilt"
	}
	fmt.Fprintf(stdio.Out, "%s: %s (kernel %s, %d modules, initrd %s)\n", o.Dir, state, m.Release, len(m.Modules), m.Compression)
	return nil
}
