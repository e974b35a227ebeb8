package elfdeps

import (
	"slices"
	"testing"
)

// FuzzCache checks that ParseCache never panics or over-allocates, that
// what it decodes encodes back to the same entries, and that lookups on a
// decoded (possibly unsorted) cache stay in bounds and return only paths
// it holds under a matching name.
func FuzzCache(f *testing.F) {
	es := testEntries()
	f.Add(encodeCache(es, false, false))
	f.Add(encodeCache(es, true, false))
	f.Add(encodeCache(es, false, true))
	f.Add(encodeCache(es[:1], true, true))
	f.Add(encodeCache(nil, false, false))
	f.Add([]byte(cacheMagic))
	f.Add([]byte(oldCacheMagic + "\x00\x02\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCache(b)
		if err != nil {
			if c != nil {
				t.Fatalf("ParseCache returned %d entries with error %v", len(c.Entries), err)
			}
			return
		}
		if n := len(c.Entries); n*cacheEntrySize > len(b) {
			t.Fatalf("%d entries from %d bytes", n, len(b))
		}
		again, err := ParseCache(encodeCache(c.Entries, false, false))
		if err != nil {
			t.Fatalf("re-encoded cache: %v", err)
		}
		if !slices.Equal(again.Entries, c.Entries) {
			t.Fatalf("round trip: got %+v, want %+v", again.Entries, c.Entries)
		}
		for _, e := range c.Entries {
			p := c.lookup(e.Name, e.Flags)
			if p == "" {
				continue
			}
			if !slices.ContainsFunc(c.Entries, func(x CacheEntry) bool { return x.Path == p && libcmp(x.Name, e.Name) == 0 }) {
				t.Fatalf("lookup(%q) = %q, which no entry of that name holds", e.Name, p)
			}
		}
	})
}
