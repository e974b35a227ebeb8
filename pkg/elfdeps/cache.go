package elfdeps

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Cache is a decoded /etc/ld.so.cache: the library names ldconfig found
// and where. The format is in the package doc.
type Cache struct {
	// Entries are in file order, which ldconfig sorts by name, descending
	// by libcmp; lookups bisect them, so an unsorted cache misses names
	// just as it does for ld.so.
	Entries []CacheEntry
}

// CacheEntry is one library in the cache.
type CacheEntry struct {
	Name      string // key, a DT_NEEDED name: "libc.so.6"
	Path      string // value: "/lib/x86_64-linux-gnu/libc.so.6"
	Flags     int32  // kind and architecture, 0x0303 for libc6,x86-64
	OSVersion uint32 // minimum kernel, unused by current glibc
	HWCap     uint64 // 0 for baseline libraries
}

// The cache file format (glibc sysdeps/generic/dl-cache.h).
const (
	cacheMagic      = "glibc-ld.so.cache1.1" // magic and version
	cacheHeaderSize = 48
	cacheEntrySize  = 24
	oldCacheMagic   = "ld.so-1.7.0"
	oldHeaderSize   = 16 // magic, padding, nlibs
	oldEntrySize    = 12 // flags, key, value
	cacheAlign      = 8  // the new header follows the old table at this alignment

	cacheEndianInvalid = 1
	cacheEndianBig     = 3
)

// ReadCache reads root/etc/ld.so.cache. A missing file is an empty cache,
// as it is for ld.so.
func ReadCache(root string) (*Cache, error) {
	b, err := os.ReadFile(filepath.Join(root, "etc", "ld.so.cache"))
	if errors.Is(err, fs.ErrNotExist) {
		return &Cache{}, nil
	}
	if err != nil {
		return nil, err
	}
	c, err := ParseCache(b)
	if err != nil {
		return nil, fmt.Errorf("/etc/ld.so.cache: %w", err)
	}
	return c, nil
}

// ParseCache decodes an ld.so.cache in the new format, alone or after the
// old format's table. Every count and offset is checked against len(b);
// the strings are copied, so b may be reused.
func ParseCache(b []byte) (*Cache, error) {
	start, err := newCacheStart(b)
	if err != nil {
		return nil, err
	}
	h := b[start:]
	var bo binary.ByteOrder = binary.LittleEndian
	switch h[28] & 3 {
	case cacheEndianInvalid:
		return nil, errors.New("cache marked invalid by ldconfig")
	case cacheEndianBig:
		bo = binary.BigEndian
	}
	n := bo.Uint32(h[20:])
	if room := (len(h) - cacheHeaderSize) / cacheEntrySize; uint64(n) > uint64(room) {
		return nil, fmt.Errorf("header claims %d entries, the file has room for %d", n, room)
	}
	c := &Cache{Entries: make([]CacheEntry, n)}
	for i := range c.Entries {
		e := h[cacheHeaderSize+i*cacheEntrySize:]
		name, err := cacheString(h, bo.Uint32(e[4:]))
		if err != nil {
			return nil, fmt.Errorf("entry %d name: %w", i, err)
		}
		path, err := cacheString(h, bo.Uint32(e[8:]))
		if err != nil {
			return nil, fmt.Errorf("entry %d path: %w", i, err)
		}
		c.Entries[i] = CacheEntry{
			Name:      name,
			Path:      path,
			Flags:     int32(bo.Uint32(e)),
			OSVersion: bo.Uint32(e[12:]),
			HWCap:     bo.Uint64(e[16:]),
		}
	}
	return c, nil
}

// newCacheStart finds the new-format header in b: at 0, or after the old
// format's table.
func newCacheStart(b []byte) (int, error) {
	if bytes.HasPrefix(b, []byte(cacheMagic)) {
		if len(b) < cacheHeaderSize {
			return 0, fmt.Errorf("%d bytes, shorter than the %d-byte header", len(b), cacheHeaderSize)
		}
		return 0, nil
	}
	if !bytes.HasPrefix(b, []byte(oldCacheMagic)) {
		return 0, errors.New("not an ld.so.cache (bad magic)")
	}
	if len(b) < oldHeaderSize {
		return 0, fmt.Errorf("%d bytes, shorter than the old format's header", len(b))
	}
	// The old table's count is in the writer's byte order, which the old
	// header does not record: try both.
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		n := uint64(bo.Uint32(b[12:]))
		off := (oldHeaderSize + n*oldEntrySize + cacheAlign - 1) &^ (cacheAlign - 1)
		if off+cacheHeaderSize <= uint64(len(b)) && bytes.HasPrefix(b[off:], []byte(cacheMagic)) {
			return int(off), nil
		}
	}
	return 0, errors.New("old-format cache without the new format (not supported)")
}

// cacheString is the NUL-terminated string at off in h.
func cacheString(h []byte, off uint32) (string, error) {
	if uint64(off) >= uint64(len(h)) {
		return "", fmt.Errorf("offset %d outside the %d-byte cache", off, len(h))
	}
	s := h[off:]
	i := bytes.IndexByte(s, 0)
	if i < 0 {
		return "", fmt.Errorf("string at %d not terminated", off)
	}
	return string(s[:i]), nil
}

// lookup is ld.so's search_cache: bisect for name, back up to the first
// entry with that name, and take the first one usable by a program whose
// cache ID is id (flags 1 or id) that is a baseline library (hwcap 0; see
// the package doc). It returns "" if there is none.
func (c *Cache) lookup(name string, id int32) string {
	e := c.Entries
	left, right := 0, len(e)-1
	for left <= right {
		mid := (left + right) / 2
		cmp := libcmp(name, e[mid].Name)
		if cmp < 0 {
			left = mid + 1
			continue
		}
		if cmp > 0 {
			right = mid - 1
			continue
		}
		first := mid
		for first > 0 && libcmp(name, e[first-1].Name) == 0 {
			first--
		}
		for i := first; i <= right; i++ {
			if i > mid && libcmp(name, e[i].Name) != 0 {
				break
			}
			if (e[i].Flags == cacheFlagELF || e[i].Flags == id) && e[i].HWCap == 0 {
				return e[i].Path
			}
		}
		return ""
	}
	return ""
}

// libcmp is glibc's _dl_cache_libcmp: strings compare byte by byte, except
// that runs of digits compare as numbers ("libfoo.so.10" > "libfoo.so.9")
// and a digit sorts after any other byte. The result's sign is what
// matters.
func libcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) {
		switch {
		case isDigit(a[i]) && j < len(b) && isDigit(b[j]):
			var va, vb int32 // C int, wrapping as it does in practice
			for ; i < len(a) && isDigit(a[i]); i++ {
				va = va*10 + int32(a[i]-'0')
			}
			for ; j < len(b) && isDigit(b[j]); j++ {
				vb = vb*10 + int32(b[j]-'0')
			}
			if va != vb {
				return cmpInt(va, vb)
			}
		case isDigit(a[i]):
			return 1
		case j < len(b) && isDigit(b[j]):
			return -1
		case j >= len(b):
			return 1 // b ended: *p1 - '\0' > 0
		case a[i] != b[j]:
			return cmpInt(int32(a[i]), int32(b[j]))
		default:
			i++
			j++
		}
	}
	if j < len(b) {
		return -1
	}
	return 0
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func cmpInt(a, b int32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
