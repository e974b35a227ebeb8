package config

import "bytes"

// field is one token of a line and its byte offset in that line.
type field struct {
	text string
	off  int
}

// splitLines cuts data at '\n' (the '\n' belongs to no line). Bytes after the
// last '\n' form a final line only if there are some: "a\n" and "a" both
// have one line, so line numbers match an editor's.
func splitLines(data []byte) [][]byte {
	var ls [][]byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return append(ls, data)
		}
		ls = append(ls, data[:i])
		data = data[i+1:]
	}
	return ls
}

func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\r' || b == '\v' || b == '\f'
}

// fields returns the tokens of one line up to a '#', which starts a comment
// wherever it appears.
func fields(l []byte) []field {
	var fs []field
	for i := 0; i < len(l) && l[i] != '#'; {
		if isSpace(l[i]) {
			i++
			continue
		}
		j := i
		for j < len(l) && !isSpace(l[j]) && l[j] != '#' {
			j++
		}
		fs = append(fs, field{string(l[i:j]), i})
		i = j
	}
	return fs
}
