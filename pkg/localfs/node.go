package localfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/beo-cluster/beo/pkg/fstab"
	"golang.org/x/sys/unix"
)

// This file is the node half: what `beo beofdisk -probe|-mount|-swapon`
// does on the node.

// Signature reads a partition's signature from r (the device).
func Signature(r io.ReaderAt) (Sig, error) {
	var sb [2]byte
	if _, err := r.ReadAt(sb[:], 1024+56); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	} else if err == nil && binary.LittleEndian.Uint16(sb[:]) == 0xEF53 {
		return SigExt, nil
	}
	// The swap signature ends the first page, whatever the page size
	// mkswap ran with.
	for _, page := range []int64{4096, 8192, 16384, 65536} {
		var b [10]byte
		if _, err := r.ReadAt(b[:], page-10); err != nil {
			break
		}
		if string(b[:]) == "SWAPSPACE2" || string(b[:]) == "SWAP-SPACE" {
			return SigSwap, nil
		}
	}
	return SigNone, nil
}

// ProbeDevice returns dev's signature and whether it is in use: listed
// in procMounts (/proc/mounts) or procSwaps (/proc/swaps).
func ProbeDevice(dev, procMounts, procSwaps string) (Found, error) {
	f, err := os.Open(dev)
	if err != nil {
		return Found{}, err
	}
	defer f.Close()
	sig, err := Signature(f)
	if err != nil {
		return Found{}, fmt.Errorf("%s: %w", dev, err)
	}
	return Found{Sig: sig, InUse: listed(procMounts, dev) || listed(procSwaps, dev)}, nil
}

// listed reports whether a line of file starts with dev.
func listed(file, dev string) bool {
	b, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == dev {
			return true
		}
	}
	return false
}

// Mount mounts dev on dir (made if missing) as typ with the resolved
// fstab options opts (pkg/fstab KernelArgs: mount(2) flags and file
// system data), as the node's boot-time mount does: it first has load
// load the modules typ needs (fstab.Modules; pid1.LoadModules on a node,
// whose kernel has no modprobe; nil: none). Already mounted there is
// success.
func Mount(dev, dir, typ, opts, procMounts string, load func(...string) error) error {
	if mountedOn(procMounts, dev, dir) {
		return nil
	}
	var lerr error
	if names := fstab.Modules(typ); load != nil && len(names) > 0 {
		lerr = load(names...)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	flags, data := fstab.KernelArgs(opts)
	if err := unix.Mount(dev, dir, typ, flags, data); err != nil {
		if lerr != nil {
			err = fmt.Errorf("%w (loading modules: %v)", err, lerr)
		}
		return fmt.Errorf("mount %s on %s (%s): %w", dev, dir, typ, err)
	}
	return nil
}

func mountedOn(procMounts, dev, dir string) bool {
	b, err := os.ReadFile(procMounts)
	if err != nil {
		return false
	}
	dir = filepath.Clean(dir)
	for _, l := range bytes.Split(b, []byte("\n")) {
		if f := strings.Fields(string(l)); len(f) > 1 && f[0] == dev && f[1] == dir {
			return true
		}
	}
	return false
}

// Swapon turns swap on for dev; already on is success.
func Swapon(dev, procSwaps string) error {
	if listed(procSwaps, dev) {
		return nil
	}
	p, err := unix.BytePtrFromString(dev)
	if err != nil {
		return err
	}
	if _, _, e := unix.Syscall(unix.SYS_SWAPON, uintptr(unsafe.Pointer(p)), 0, 0); e != 0 {
		return fmt.Errorf("swapon %s: %w", dev, e)
	}
	return nil
}
