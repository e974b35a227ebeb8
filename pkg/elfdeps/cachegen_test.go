package elfdeps

import (
	"bytes"
	"encoding/binary"
	"slices"
)

// sortCache orders entries as ldconfig does: by name, descending by
// libcmp (the lookup bisects on that order).
func sortCache(es []CacheEntry) []CacheEntry {
	es = slices.Clone(es)
	slices.SortStableFunc(es, func(a, b CacheEntry) int { return libcmp(b.Name, a.Name) })
	return es
}

// encodeCache writes entries, in the order given, as an ld.so.cache: the
// new format, big- or little-endian, after an old-format table if old.
func encodeCache(es []CacheEntry, big, old bool) []byte {
	var bo binary.AppendByteOrder = binary.LittleEndian
	endian := byte(2)
	if big {
		bo, endian = binary.BigEndian, 3
	}
	strStart := cacheHeaderSize + len(es)*cacheEntrySize
	var strs bytes.Buffer
	offs := make([][2]uint32, len(es))
	for i, e := range es {
		offs[i][0] = uint32(strStart + strs.Len())
		strs.WriteString(e.Name + "\x00")
		offs[i][1] = uint32(strStart + strs.Len())
		strs.WriteString(e.Path + "\x00")
	}

	var n bytes.Buffer
	n.WriteString(cacheMagic)
	n.Write(bo.AppendUint32(nil, uint32(len(es))))
	n.Write(bo.AppendUint32(nil, uint32(strs.Len())))
	n.Write([]byte{endian, 0, 0, 0})
	n.Write(make([]byte, 16)) // extension offset, unused
	for i, e := range es {
		n.Write(bo.AppendUint32(nil, uint32(e.Flags)))
		n.Write(bo.AppendUint32(nil, offs[i][0]))
		n.Write(bo.AppendUint32(nil, offs[i][1]))
		n.Write(bo.AppendUint32(nil, e.OSVersion))
		n.Write(bo.AppendUint64(nil, e.HWCap))
	}
	n.Write(strs.Bytes())
	if !old {
		return n.Bytes()
	}

	var o bytes.Buffer
	o.WriteString(oldCacheMagic + "\x00")
	o.Write(bo.AppendUint32(nil, uint32(len(es))))
	oldStrtab := oldHeaderSize + len(es)*oldEntrySize
	newStart := (oldStrtab + cacheAlign - 1) &^ (cacheAlign - 1)
	for i, e := range es { // old offsets count from the end of the old table
		o.Write(bo.AppendUint32(nil, uint32(e.Flags)))
		o.Write(bo.AppendUint32(nil, offs[i][0]+uint32(newStart-oldStrtab)))
		o.Write(bo.AppendUint32(nil, offs[i][1]+uint32(newStart-oldStrtab)))
	}
	for o.Len() < newStart {
		o.WriteByte(0)
	}
	o.Write(n.Bytes())
	return o.Bytes()
}
