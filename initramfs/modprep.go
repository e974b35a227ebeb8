package initramfs

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// This file prepares the file systems' modules (those only a mount
// needs: modindex Graph.Only of fstab.MountModules — the NFS client,
// ext4) for a fast load on the node: a node loads them while it boots
// when its fstab asks (pkg/pid1), and every second they take is a second
// of time to up.
//
// Measured on a node under QEMU TCG with -icount shift=2 (deterministic:
// 250 million guest instructions a second), loading the NFS client's 8
// modules (sunrpc … nfsv4, 5.3 MB) took 8.3 s as Debian ships them:
//
//   - 2.5 s verifying the appended signatures (SHA-256 of every byte in
//     generic C: the kernel's accelerated sha256 is itself a module);
//   - 4.5 s in trace_event_eval_update: for each of a module's eval maps
//     (the enum names its trace events print: nfsv4 has 194) the kernel
//     rewrites the print format of each of the module's events (107),
//     scanning every string — so tools reading tracefs's format files
//     see numbers instead of names;
//   - 0.9 s in ftrace's setup of the modules' 3000-odd function entries
//     (__mcount_loc): a kallsyms lookup each, linear in the module's
//     symbols, and a text poke each to turn the call into a NOP.
//
// Without the three they load in 0.42 s (1.3 s with ftrace's setup
// left in). So the builder carries these modules without their
// signature and with the _ftrace_eval_map and __mcount_loc sections
// renamed (each section header's name moved one byte on, to
// "ftrace_eval_map" and "_mcount_loc": the kernel finds neither and skips
// that work; the bytes stay, laid out and relocated as before, and still
// under a name of their own in /sys/module/M/sections — the empty name an
// earlier build gave both made the kernel warn, with a call trace on the
// console, of a duplicate file there and drop the module's sections
// directory). What that costs:
//
//   - the kernel logs once "module verification failed: signature and/or
//     required key missing - tainting kernel" and sets taint E. The check
//     protects nothing on a beo node: the kernel and initrd, and init
//     itself, come over the cluster network unauthenticated, so anyone who
//     could alter a module in the initrd could alter init;
//   - the format files of these modules' trace events keep their enum
//     names (NFS4ERR_DELAY rather than 10008): trace-cmd and perf cannot
//     evaluate those symbols. The kernel's own trace output (the trace
//     file) is unaffected: it prints with the compiled-in functions. The
//     trace events themselves work as before;
//   - their functions cannot be traced by ftrace (the function and
//     function_graph tracers, fentry BPF programs, livepatch); kprobes
//     still work (int3). Each of their function entries keeps its call to
//     __fentry__, which only returns: a call and a return more per
//     function, nothing next to an RPC.
//
// A kernel that refuses unsigned modules — CONFIG_MODULE_SIG_FORCE, or a
// lockdown forced by its config — gets them as shipped (keepSignatures),
// as does one whose config the builder cannot read (it cannot tell), and
// nodes whose kernel command line (the config's kernelcommandline) says
// module.sig_enforce=1 or lockdown= (Options.SignedModules, set by
// ForCluster). A node under Secure Boot locks its kernel down too: give
// it module.sig_enforce=1 (the node's mount error says so). Only
// these modules are changed: the NIC and disk drivers a node needs to
// boot at all are carried as shipped, so a node whose kernel refuses
// them still comes up and says why its mounts fail.

// sigMarker ends a module file that carries an appended signature.
const sigMarker = "~Module signature appended~\n"

// sigInfoLen is the size of the kernel's struct module_signature, which
// precedes the marker: algo, hash, id_type, signer_len, key_id_len,
// 3 bytes of padding, and the signature's length (big-endian uint32).
const sigInfoLen = 12

// stripSignature returns b without its appended signature, and whether it
// had one. A trailer that does not add up is an error.
func stripSignature(b []byte) ([]byte, bool, error) {
	if !bytes.HasSuffix(b, []byte(sigMarker)) {
		return b, false, nil
	}
	end := len(b) - len(sigMarker)
	if end < sigInfoLen {
		return nil, false, errors.New("signature trailer without its header")
	}
	n := binary.BigEndian.Uint32(b[end-4 : end])
	if uint64(n) > uint64(end-sigInfoLen) {
		return nil, false, fmt.Errorf("signature length %d exceeds the file", n)
	}
	return b[:end-sigInfoLen-int(n)], true, nil
}

// renameSection renames b's section called name to name without its
// first byte (its header's sh_name moved one byte on in the section name
// table: a name's tail is a name too), and reports whether b had such a
// section. b is modified in place.
func renameSection(b []byte, name string) (bool, error) {
	if len(name) < 2 {
		return false, fmt.Errorf("section name %q: too short to rename", name)
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return false, err
	}
	var shoff uint64
	var shentsize uint16
	switch f.Class {
	case elf.ELFCLASS64:
		if len(b) < 64 {
			return false, errors.New("short ELF header")
		}
		shoff, shentsize = f.ByteOrder.Uint64(b[0x28:]), f.ByteOrder.Uint16(b[0x3a:])
	case elf.ELFCLASS32:
		if len(b) < 52 {
			return false, errors.New("short ELF header")
		}
		shoff, shentsize = uint64(f.ByteOrder.Uint32(b[0x20:])), f.ByteOrder.Uint16(b[0x2e:])
	default:
		return false, fmt.Errorf("ELF class %v", f.Class)
	}
	found := false
	for i, s := range f.Sections {
		if s.Name != name {
			continue
		}
		off := shoff + uint64(i)*uint64(shentsize)
		if off+4 > uint64(len(b)) {
			return false, fmt.Errorf("section header %d outside the file", i)
		}
		shName := f.ByteOrder.Uint32(b[off:]) // sh_name comes first in both classes
		f.ByteOrder.PutUint32(b[off:], shName+1)
		found = true
	}
	return found, nil
}

// prepareModule is what the builder does to a file system's module (see
// above): b without its signature, its eval maps and ftrace's list of
// function entries renamed out of the kernel's sight.
func prepareModule(b []byte) ([]byte, error) {
	b, _, err := stripSignature(b)
	if err != nil {
		return nil, err
	}
	b = bytes.Clone(b)
	for _, sec := range []string{"_ftrace_eval_map", "__mcount_loc"} {
		if _, err := renameSection(b, sec); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// keepSignatures reports whether the kernel image at kernel (release
// rel) may refuse unsigned modules, reading the config file beside it
// (config-REL, as distributions install it), and why. A config that
// cannot be read means yes: a node must never lose its file systems to a
// guess.
func keepSignatures(kernel, rel string) (bool, string) {
	file := filepath.Join(filepath.Dir(kernel), "config-"+rel)
	f, err := os.Open(file)
	if err != nil {
		return true, fmt.Sprintf("cannot tell whether the kernel accepts unsigned modules: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		switch k {
		case "CONFIG_MODULE_SIG_FORCE", "CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY", "CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY":
			if v == "y" {
				return true, file + ": " + k + "=y"
			}
		}
	}
	if err := sc.Err(); err != nil {
		return true, fmt.Sprintf("cannot tell whether the kernel accepts unsigned modules: %s: %v", file, err)
	}
	return false, ""
}
