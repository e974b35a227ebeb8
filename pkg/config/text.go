package config

import (
	"bytes"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// This file holds the checks that come before the grammar: is the file
// text at all, and which lines hold characters no config line may.

// notText finds the first line holding a NUL byte or a byte sequence that
// is not UTF-8: such a file is not a config (a binary, an image, random
// bytes) and nothing in it is parsed. It returns that line (1-based) and
// what is wrong with it; line 0 when every line is text.
func notText(lines [][]byte) (line int, msg string) {
	for i, l := range lines {
		for off := 0; off < len(l); {
			r, size := utf8.DecodeRune(l[off:])
			switch {
			case r == 0:
				return i + 1, fmt.Sprintf("not a text file: NUL byte at column %d", off+1)
			case r == utf8.RuneError && size == 1:
				return i + 1, fmt.Sprintf("not a text file: invalid UTF-8 byte %#02x at column %d", l[off], off+1)
			}
			off += size
		}
	}
	return 0, ""
}

// badChar finds the first control character (other than tab, and a '\r'
// ending the line, for CRLF files) or other non-printable rune — a
// no-break space, a byte-order mark, an escape sequence — in a line of
// UTF-8 text. Such a line cannot be read as the admin sees it on screen.
// It returns "" when the line is clean.
func badChar(l []byte) string {
	l = bytes.TrimSuffix(l, []byte("\r"))
	for off := 0; off < len(l); {
		r, size := utf8.DecodeRune(l[off:])
		if r != '\t' && !unicode.IsPrint(r) {
			what := "non-printable character"
			if unicode.IsControl(r) {
				what = "control character"
			}
			return fmt.Sprintf("%s %U at column %d; line ignored", what, r, off+1)
		}
		off += size
	}
	return ""
}
