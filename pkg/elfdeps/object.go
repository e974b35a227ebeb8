package elfdeps

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Limits on what is read from one ELF file, so a hostile or broken file
// cannot make us allocate much.
const (
	maxInterp  = 4096    // PT_INTERP (PATH_MAX)
	maxDynamic = 1 << 20 // PT_DYNAMIC
	maxStrtab  = 1 << 24 // DT_STRSZ
)

// object is what the loader reads from one ELF file's headers.
type object struct {
	arch    arch
	interp  string // PT_INTERP, "" if none
	needed  []string
	soname  string
	rpath   string // "" if none, or if DT_RUNPATH is present (ld.so ignores it then)
	runpath string
	hasRun  bool // DT_RUNPATH present, even if empty
	flags1  uint64
}

// DF_1_NODEFLIB: do not search the default directories for this object's
// dependencies.
const df1NoDefLib = 0x800

// errSkip marks a candidate of another ELF class or machine, which the
// loader passes over.
var errSkip = errors.New("wrong ELF class or machine")

// checkIdent does open_verify's header checks on a candidate library for a
// program of arch want: errSkip for another class or machine, an error for
// anything ld.so refuses outright.
func checkIdent(r io.ReaderAt, want arch) error {
	size := 52 // the whole ELF header must be there, as for ld.so
	if want.is64() {
		size = 64
	}
	id := make([]byte, size)
	n, err := r.ReadAt(id, 0)
	if n < len(id) {
		if err == nil || err == io.EOF {
			return errors.New("file too short")
		}
		return fmt.Errorf("cannot read file data: %w", err)
	}
	if string(id[:4]) != elf.ELFMAG {
		return errors.New("invalid ELF header")
	}
	if elf.Class(id[elf.EI_CLASS]) != want.class {
		return errSkip
	}
	data := elf.Data(id[elf.EI_DATA])
	if data != want.data {
		return fmt.Errorf("ELF data encoding %v, want %v", data, want.data)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if data == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	if elf.Machine(bo.Uint16(id[18:])) != want.machine {
		return errSkip
	}
	switch t := elf.Type(bo.Uint16(id[16:])); t {
	case elf.ET_DYN, elf.ET_EXEC:
	default:
		return fmt.Errorf("%v: only ET_DYN and ET_EXEC can be loaded", t)
	}
	return nil
}

// readObject reads the program headers and the dynamic section of an ELF
// file. Like ld.so it goes by PT_DYNAMIC and DT_STRTAB, not by section
// headers, so section-stripped files work.
func readObject(r io.ReaderAt) (*object, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, err
	}
	o := &object{
		arch: arch{class: f.Class, data: f.Data, machine: f.Machine, flags: elfFlags(r, f)},
	}
	var dyn *elf.Prog
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			b, err := readSegment(p, maxInterp)
			if err != nil {
				return nil, fmt.Errorf("PT_INTERP: %w", err)
			}
			if i := bytes.IndexByte(b, 0); i >= 0 {
				b = b[:i]
			}
			o.interp = string(b)
		case elf.PT_DYNAMIC:
			dyn = p
		}
	}
	if dyn != nil {
		if err := o.readDynamic(f, dyn); err != nil {
			return nil, fmt.Errorf("PT_DYNAMIC: %w", err)
		}
	}
	return o, nil
}

// elfFlags reads e_flags, which debug/elf does not expose.
func elfFlags(r io.ReaderAt, f *elf.File) uint32 {
	off := int64(36) // ELF32: after ident, type, machine, version, entry, phoff, shoff
	if f.Class == elf.ELFCLASS64 {
		off = 48
	}
	var b [4]byte
	if _, err := r.ReadAt(b[:], off); err != nil {
		return 0
	}
	return f.ByteOrder.Uint32(b[:])
}

func readSegment(p *elf.Prog, limit uint64) ([]byte, error) {
	if p.Filesz > limit {
		return nil, fmt.Errorf("%d bytes, more than %d", p.Filesz, limit)
	}
	b := make([]byte, p.Filesz)
	if _, err := io.ReadFull(p.Open(), b); err != nil {
		return nil, err
	}
	return b, nil
}

func (o *object) readDynamic(f *elf.File, p *elf.Prog) error {
	b, err := readSegment(p, maxDynamic)
	if err != nil {
		return err
	}
	size := 16
	if f.Class == elf.ELFCLASS32 {
		size = 8
	}
	var (
		strtab, strsz                      uint64
		haveStrtab                         bool
		needed                             []uint64
		soname, rpath, runpath             uint64
		haveSoname, haveRPath, haveRunpath bool
	)
loop:
	for ; len(b) >= size; b = b[size:] {
		var tag int64
		var val uint64
		if size == 16 {
			tag, val = int64(f.ByteOrder.Uint64(b)), f.ByteOrder.Uint64(b[8:])
		} else {
			tag, val = int64(int32(f.ByteOrder.Uint32(b))), uint64(f.ByteOrder.Uint32(b[4:]))
		}
		switch elf.DynTag(tag) {
		case elf.DT_NULL:
			break loop
		case elf.DT_NEEDED:
			needed = append(needed, val)
		case elf.DT_STRTAB:
			strtab, haveStrtab = val, true
		case elf.DT_STRSZ:
			strsz = val
		case elf.DT_SONAME:
			soname, haveSoname = val, true
		case elf.DT_RPATH:
			rpath, haveRPath = val, true
		case elf.DT_RUNPATH:
			runpath, haveRunpath = val, true
		case elf.DT_FLAGS_1:
			o.flags1 = val
		}
	}
	if !haveStrtab {
		if len(needed) > 0 || haveSoname || haveRPath || haveRunpath {
			return errors.New("no DT_STRTAB")
		}
		return nil
	}
	strs, err := readStrtab(f, strtab, strsz)
	if err != nil {
		return err
	}
	str := func(off uint64) (string, error) {
		if off >= uint64(len(strs)) {
			return "", fmt.Errorf("string offset %#x outside DT_STRTAB (%d bytes)", off, len(strs))
		}
		s := strs[off:]
		i := bytes.IndexByte(s, 0)
		if i < 0 {
			return "", fmt.Errorf("string at %#x not terminated", off)
		}
		return string(s[:i]), nil
	}
	for _, off := range needed {
		s, err := str(off)
		if err != nil {
			return fmt.Errorf("DT_NEEDED: %w", err)
		}
		o.needed = append(o.needed, s)
	}
	if haveSoname {
		if o.soname, err = str(soname); err != nil {
			return fmt.Errorf("DT_SONAME: %w", err)
		}
	}
	if haveRunpath {
		if o.runpath, err = str(runpath); err != nil {
			return fmt.Errorf("DT_RUNPATH: %w", err)
		}
		o.hasRun = true
	} else if haveRPath {
		if o.rpath, err = str(rpath); err != nil {
			return fmt.Errorf("DT_RPATH: %w", err)
		}
	}
	return nil
}

// readStrtab reads the dynamic string table, which DT_STRTAB gives as a
// virtual address: find the PT_LOAD segment that holds it.
func readStrtab(f *elf.File, addr, size uint64) ([]byte, error) {
	if size > maxStrtab {
		return nil, fmt.Errorf("DT_STRSZ %d too large", size)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || addr < p.Vaddr || addr-p.Vaddr >= p.Filesz {
			continue
		}
		off := addr - p.Vaddr
		n := min(size, p.Filesz-off)
		b := make([]byte, n)
		if _, err := p.ReadAt(b, int64(off)); err != nil {
			return nil, fmt.Errorf("DT_STRTAB: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("DT_STRTAB %#x is in no PT_LOAD segment", addr)
}
