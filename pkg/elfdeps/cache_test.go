package elfdeps

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestLibcmp(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"libc.so.6", "libc.so.6", 0},
		{"libfoo.so.10", "libfoo.so.9", 1}, // numbers, not bytes
		{"libfoo.so.9", "libfoo.so.10", -1},
		{"libfoo.so.01", "libfoo.so.1", 0}, // leading zeros vanish
		{"libz3.so", "libzstd.so", 1},      // a digit sorts after a letter
		{"libzstd.so", "libz3.so", -1},
		{"liba.so", "libb.so", -1},
		{"libc.so", "libc.so.6", -1}, // prefix first
		{"libc.so.6", "libc.so", 1},
		{"lib1", "lib", 1},
		{"", "", 0},
		{"", "a", -1},
		{"99999999999999999999", "1", 1}, // wraps like C int, deterministically
	} {
		got := libcmp(tt.a, tt.b)
		if sign(got) != sign(tt.want) {
			t.Errorf("libcmp(%q, %q) = %d, want sign %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

// testEntries is a small cache for one x86-64 system.
func testEntries() []CacheEntry {
	return sortCache([]CacheEntry{
		{Name: "libc.so.6", Path: "/lib/x86_64-linux-gnu/libc.so.6", Flags: 0x0303},
		{Name: "libc.so.6", Path: "/lib/i386-linux-gnu/libc.so.6", Flags: 0x0003},
		{Name: "libm.so.6", Path: "/lib/x86_64-linux-gnu/libm.so.6", Flags: 0x0303},
		{Name: "libfoo.so.10", Path: "/opt/foo/libfoo.so.10", Flags: 0x0303},
		{Name: "libfoo.so.9", Path: "/opt/foo/libfoo.so.9", Flags: 0x0303},
		{Name: "libz.so.1", Path: "/lib/x86_64-linux-gnu/libz.so.1", Flags: 0x0303, OSVersion: 0x30200, HWCap: 0},
	})
}

func TestParseCacheFormats(t *testing.T) {
	want := testEntries()
	for _, tt := range []struct {
		name     string
		big, old bool
	}{
		{"little-endian", false, false},
		{"big-endian", true, false},
		{"after old format", false, true},
		{"big-endian after old format", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCache(encodeCache(want, tt.big, tt.old))
			if err != nil {
				t.Fatalf("ParseCache: %v", err)
			}
			if !slices.Equal(c.Entries, want) {
				t.Errorf("got %+v\nwant %+v", c.Entries, want)
			}
		})
	}
}

func TestParseCacheErrors(t *testing.T) {
	good := encodeCache(testEntries(), false, false)
	patch := func(off int, b ...byte) []byte {
		c := slices.Clone(good)
		copy(c[off:], b)
		return c
	}
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "bad magic"},
		{"other file", []byte("\x7fELF\x02\x01\x01"), "bad magic"},
		{"header cut", good[:40], "shorter than"},
		{"entries cut", good[:cacheHeaderSize+cacheEntrySize], "room for 1"},
		{"huge count", patch(20, 0xff, 0xff, 0xff, 0xff), "claims 4294967295 entries"},
		{"marked invalid", patch(28, 1), "marked invalid"},
		{"name offset out", patch(cacheHeaderSize+4, 0xff, 0xff, 0, 0), "entry 0 name: offset 65535"},
		{"path offset out", patch(cacheHeaderSize+8, 0, 0, 0, 0x80), "entry 0 path: offset 2147483648"},
		{"unterminated", append(slices.Clone(good[:len(good)-1]), 'x'), "not terminated"},
		{"old format only", []byte("ld.so-1.7.0\x00\x00\x00\x00\x00"), "without the new format"},
		{"old format cut", []byte("ld.so-1.7.0\x00\x01"), "shorter than the old"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCache(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseCache = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestCacheLookup(t *testing.T) {
	c := &Cache{Entries: sortCache([]CacheEntry{
		// glibc-hwcaps and legacy hwcap entries come first; we skip them.
		{Name: "libc.so.6", Path: "/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libc.so.6", Flags: 0x0303, HWCap: 1<<62 | 1},
		{Name: "libc.so.6", Path: "/lib/x86_64-linux-gnu/libc.so.6", Flags: 0x0303},
		{Name: "libc.so.6", Path: "/lib/i386-linux-gnu/libc.so.6", Flags: 0x0003},
		{Name: "libplain.so", Path: "/opt/plain/libplain.so", Flags: 0x0001},
		{Name: "libplain.so", Path: "/opt/x64/libplain.so", Flags: 0x0303},
		{Name: "libonly32.so", Path: "/lib32/libonly32.so", Flags: 0x0003},
		{Name: "libfoo.so.10", Path: "/opt/foo/libfoo.so.10", Flags: 0x0303},
		{Name: "libfoo.so.9", Path: "/opt/foo/libfoo.so.9", Flags: 0x0303},
	})}
	for _, tt := range []struct {
		name string
		id   int32
		want string
	}{
		{"libc.so.6", 0x0303, "/lib/x86_64-linux-gnu/libc.so.6"},
		{"libc.so.6", 0x0003, "/lib/i386-linux-gnu/libc.so.6"},
		{"libc.so.6", 0x0a03, ""}, // no aarch64 libc
		{"libonly32.so", 0x0303, ""},
		{"libplain.so", 0x0303, firstPlain(c)},
		{"libfoo.so.9", 0x0303, "/opt/foo/libfoo.so.9"},
		{"libfoo.so.09", 0x0303, "/opt/foo/libfoo.so.9"}, // libcmp equality, as ld.so
		{"libfoo.so.10", 0x0303, "/opt/foo/libfoo.so.10"},
		{"libmissing.so", 0x0303, ""},
	} {
		if got := c.lookup(tt.name, tt.id); got != tt.want {
			t.Errorf("lookup(%q, %#x) = %q, want %q", tt.name, tt.id, got, tt.want)
		}
	}
	if got := (&Cache{}).lookup("libc.so.6", 0x0303); got != "" {
		t.Errorf("empty cache lookup = %q", got)
	}
}

// firstPlain is the libplain.so entry that comes first in c: ld.so takes
// the first usable one, whichever of flags 1 or the exact ID it has.
func firstPlain(c *Cache) string {
	for _, e := range c.Entries {
		if e.Name == "libplain.so" {
			return e.Path
		}
	}
	return ""
}

// TestSystemCache decodes this machine's cache and checks it against
// `ldconfig -p`, which prints every entry in file order.
func TestSystemCache(t *testing.T) {
	b, err := os.ReadFile("/etc/ld.so.cache")
	if err != nil {
		t.Skipf("no system cache: %v", err)
	}
	c, err := ParseCache(b)
	if err != nil {
		t.Fatalf("ParseCache(/etc/ld.so.cache): %v", err)
	}
	if len(c.Entries) == 0 {
		t.Fatal("system cache has no entries")
	}
	var got []string
	for i, e := range c.Entries {
		got = append(got, e.Name+" => "+e.Path)
		if i > 0 && libcmp(c.Entries[i-1].Name, e.Name) < 0 {
			t.Errorf("entries %d, %d out of order: %q before %q", i-1, i, c.Entries[i-1].Name, e.Name)
		}
		if e.HWCap == 0 && e.Flags == 0x0303 {
			if p := c.lookup(e.Name, 0x0303); p == "" {
				t.Errorf("lookup(%q) found nothing", e.Name)
			}
		}
	}

	ldconfig, err := exec.LookPath("ldconfig")
	if err != nil {
		ldconfig = "/sbin/ldconfig"
	}
	out, err := exec.Command(ldconfig, "-p").Output()
	if err != nil {
		t.Skipf("ldconfig -p: %v", err)
	}
	var want []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// "\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1"
		line := strings.TrimSpace(sc.Text())
		name, rest, ok := strings.Cut(line, " (")
		_, path, ok2 := strings.Cut(rest, ") => ")
		if ok && ok2 {
			want = append(want, name+" => "+path)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d entries, ldconfig -p lists %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("entry %d = %q, ldconfig -p says %q", i, got[i], want[i])
			break
		}
	}
}
