package elfdeps

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
)

// arch is the kind of ELF object a loader accepts: a program's class, byte
// order and machine.
type arch struct {
	class   elf.Class
	data    elf.Data
	machine elf.Machine
	flags   uint32 // e_flags, for the float ABI of riscv
}

func (a arch) String() string {
	return fmt.Sprintf("%v %v", a.class, a.machine)
}

func (a arch) is64() bool { return a.class == elf.ELFCLASS64 }

// triplet is the Debian multiarch triplet for a, "" if unknown.
func (a arch) triplet() string {
	switch a.machine {
	case elf.EM_X86_64:
		if a.is64() {
			return "x86_64-linux-gnu"
		}
		return "x86_64-linux-gnux32"
	case elf.EM_386:
		return "i386-linux-gnu"
	case elf.EM_AARCH64:
		return "aarch64-linux-gnu"
	case elf.EM_ARM:
		return "arm-linux-gnueabihf"
	case elf.EM_RISCV:
		if a.is64() {
			return "riscv64-linux-gnu"
		}
	case elf.EM_PPC64:
		if a.data == elf.ELFDATA2LSB {
			return "powerpc64le-linux-gnu"
		}
		return "powerpc64-linux-gnu"
	case elf.EM_S390:
		if a.is64() {
			return "s390x-linux-gnu"
		}
	}
	return ""
}

// platform is the kernel's AT_PLATFORM string for a, "" if it depends on
// the CPU (paths using $PLATFORM are then dropped, as ld.so drops a DST it
// cannot replace).
func (a arch) platform() string {
	switch a.machine {
	case elf.EM_X86_64:
		return "x86_64"
	case elf.EM_386:
		return "i686"
	case elf.EM_AARCH64:
		return "aarch64"
	}
	return ""
}

// libDir is the default $LIB: Debian's ld.so uses its multiarch directory,
// others lib64 or lib.
func (a arch) libDir(root string) string {
	if t := a.triplet(); t != "" {
		if fi, err := os.Stat(filepath.Join(root, "lib", t)); err == nil && fi.IsDir() {
			return "lib/" + t
		}
	}
	if a.is64() {
		return "lib64"
	}
	return "lib"
}

// defaultDirs is the loader's built-in search path for a: multiarch first,
// then lib64, then lib.
func (a arch) defaultDirs() []string {
	var dirs []string
	if t := a.triplet(); t != "" {
		dirs = append(dirs, "/lib/"+t, "/usr/lib/"+t)
	}
	if a.is64() {
		dirs = append(dirs, "/lib64", "/usr/lib64")
	}
	return append(dirs, "/lib", "/usr/lib")
}

// ld.so.cache entry flags (glibc sysdeps/generic/ldconfig.h).
const (
	cacheFlagELF      = 0x0001
	cacheFlagLibc6    = 0x0003
	cacheFlagX8664    = 0x0300
	cacheFlagS390     = 0x0400
	cacheFlagPPC64    = 0x0500
	cacheFlagX32      = 0x0800
	cacheFlagAArch64  = 0x0a00
	cacheFlagRISCVDbl = 0x1000
	cacheFlagRISCVSft = 0x0f00
)

// cacheID is _DL_CACHE_DEFAULT_ID, the cache flags of a library built for
// a. Entries flagged cacheFlagELF (plain ELF) are accepted too.
func (a arch) cacheID() int32 {
	switch a.machine {
	case elf.EM_X86_64:
		if a.is64() {
			return cacheFlagLibc6 | cacheFlagX8664
		}
		return cacheFlagLibc6 | cacheFlagX32
	case elf.EM_AARCH64:
		return cacheFlagLibc6 | cacheFlagAArch64
	case elf.EM_PPC64:
		return cacheFlagLibc6 | cacheFlagPPC64
	case elf.EM_S390:
		if a.is64() {
			return cacheFlagLibc6 | cacheFlagS390
		}
	case elf.EM_RISCV:
		const floatABIMask = 0x6 // EF_RISCV_FLOAT_ABI
		if a.flags&floatABIMask == 0 {
			return cacheFlagLibc6 | cacheFlagRISCVSft
		}
		return cacheFlagLibc6 | cacheFlagRISCVDbl
	}
	return cacheFlagLibc6
}
