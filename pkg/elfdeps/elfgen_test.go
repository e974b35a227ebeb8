package elfdeps

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
)

// elfSpec describes a minimal ELF file for fixtures: just the headers the
// loader reads (program headers, PT_INTERP, PT_DYNAMIC and its strings in
// one PT_LOAD), no sections, no code.
type elfSpec struct {
	class   elf.Class   // default ELFCLASS64
	machine elf.Machine // default EM_X86_64
	typ     elf.Type    // default ET_DYN
	interp  string
	static  bool // no PT_DYNAMIC
	needed  []string
	soname  string
	rpath   string
	runpath string
	flags1  uint64
}

// bytes lays the file out as: ELF header, program headers, strings,
// dynamic array. Virtual addresses equal file offsets.
func (s elfSpec) bytes() []byte {
	class := s.class
	if class == elf.ELFCLASSNONE {
		class = elf.ELFCLASS64
	}
	machine := s.machine
	if machine == elf.EM_NONE {
		machine = elf.EM_X86_64
	}
	typ := s.typ
	if typ == elf.ET_NONE {
		typ = elf.ET_DYN
	}
	is64 := class == elf.ELFCLASS64
	ehSize, phSize, dynSize := 52, 32, 8
	if is64 {
		ehSize, phSize, dynSize = 64, 56, 16
	}

	// String table: offset 0 is the empty string.
	strs := []byte{0}
	str := func(v string) uint64 {
		off := len(strs)
		strs = append(append(strs, v...), 0)
		return uint64(off)
	}
	type dyn struct {
		tag elf.DynTag
		val uint64
	}
	var dyns []dyn
	for _, n := range s.needed {
		dyns = append(dyns, dyn{elf.DT_NEEDED, str(n)})
	}
	if s.soname != "" {
		dyns = append(dyns, dyn{elf.DT_SONAME, str(s.soname)})
	}
	if s.rpath != "" {
		dyns = append(dyns, dyn{elf.DT_RPATH, str(s.rpath)})
	}
	if s.runpath != "" {
		dyns = append(dyns, dyn{elf.DT_RUNPATH, str(s.runpath)})
	}
	if s.flags1 != 0 {
		dyns = append(dyns, dyn{elf.DT_FLAGS_1, s.flags1})
	}

	nph := 1 // PT_LOAD
	if s.interp != "" {
		nph++
	}
	if !s.static {
		nph++
	}
	interpOff := ehSize + nph*phSize
	strOff := interpOff + len(s.interp) + 1
	dynOff := (strOff + len(strs) + 7) &^ 7
	dyns = append(dyns, dyn{elf.DT_STRTAB, uint64(strOff)}, dyn{elf.DT_STRSZ, uint64(len(strs))}, dyn{elf.DT_NULL, 0})
	total := dynOff + len(dyns)*dynSize

	bo := binary.LittleEndian
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, bo, v) }
	word := func(v uint64) { // Elf_Addr / Elf_Off / Elf_Xword-sized
		if is64 {
			w(v)
		} else {
			w(uint32(v))
		}
	}
	ident := [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(class), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)}
	w(ident)
	w(uint16(typ))
	w(uint16(machine))
	w(uint32(elf.EV_CURRENT))
	word(0)              // e_entry
	word(uint64(ehSize)) // e_phoff
	word(0)              // e_shoff
	w(uint32(0))         // e_flags
	w(uint16(ehSize))
	w(uint16(phSize))
	w(uint16(nph))
	w(uint16(0)) // e_shentsize
	w(uint16(0)) // e_shnum
	w(uint16(0)) // e_shstrndx

	ph := func(typ elf.ProgType, flags elf.ProgFlag, off, size int) {
		if is64 {
			w(uint32(typ))
			w(uint32(flags))
			w(uint64(off))  // p_offset
			w(uint64(off))  // p_vaddr
			w(uint64(off))  // p_paddr
			w(uint64(size)) // p_filesz
			w(uint64(size)) // p_memsz
			w(uint64(8))    // p_align
			return
		}
		w(uint32(typ))
		w(uint32(off))
		w(uint32(off))
		w(uint32(off))
		w(uint32(size))
		w(uint32(size))
		w(uint32(flags))
		w(uint32(4))
	}
	ph(elf.PT_LOAD, elf.PF_R, 0, total)
	if s.interp != "" {
		ph(elf.PT_INTERP, elf.PF_R, interpOff, len(s.interp)+1)
	}
	if !s.static {
		ph(elf.PT_DYNAMIC, elf.PF_R, dynOff, len(dyns)*dynSize)
	}
	b.WriteString(s.interp)
	b.WriteByte(0)
	b.Write(strs)
	for b.Len() < dynOff {
		b.WriteByte(0)
	}
	for _, d := range dyns {
		if is64 {
			w(int64(d.tag))
			w(d.val)
		} else {
			w(int32(d.tag))
			w(uint32(d.val))
		}
	}
	return b.Bytes()
}
