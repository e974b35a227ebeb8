package job

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/beo-cluster/beo/pkg/nodespec"
)

// gathered is one process's stdout or stderr, kept whole for Gather:
// limit bytes in memory, the rest in an unlinked temporary file, and a
// running digest to find equal outputs without comparing them.
type gathered struct {
	mu    sync.Mutex
	limit int
	sum   hash.Hash
	size  int64
	mem   bytes.Buffer
	file  *os.File
	err   error
}

func (g *gathered) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sum == nil {
		g.sum = sha256.New()
	}
	g.sum.Write(p)
	g.size += int64(len(p))
	if g.err != nil {
		return len(p), nil // already reported once; keep the digest honest
	}
	if g.file == nil && g.mem.Len()+len(p) <= g.limit {
		g.mem.Write(p)
		return len(p), nil
	}
	if g.file == nil {
		f, err := os.CreateTemp("", "beo-gather-")
		if err != nil {
			g.err = fmt.Errorf("gather output: %w", err)
			return len(p), nil
		}
		os.Remove(f.Name()) // unlinked: vanishes with us
		g.file = f
	}
	if _, err := g.file.Write(p); err != nil {
		g.err = fmt.Errorf("gather output: %w", err)
	}
	return len(p), nil
}

// key identifies the output's content.
func (g *gathered) key() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sum == nil || g.size == 0 {
		return ""
	}
	return fmt.Sprintf("%d:%x", g.size, g.sum.Sum(nil))
}

// writeTo copies the output to w, ending it with a newline if it lacks one.
func (g *gathered) writeTo(w io.Writer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	last := byte('\n')
	if b := g.mem.Bytes(); len(b) > 0 {
		w.Write(b)
		last = b[len(b)-1]
	}
	if g.file != nil {
		if _, err := g.file.Seek(0, io.SeekStart); err == nil {
			var tail [1]byte
			n, _ := io.Copy(w, g.file)
			if n > 0 {
				g.file.ReadAt(tail[:], n-1)
				last = tail[0]
			}
		}
	}
	if g.err != nil {
		fmt.Fprintf(w, "[%v]\n", g.err)
	}
	if last != '\n' {
		io.WriteString(w, "\n")
	}
}

func (g *gathered) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.file != nil {
		g.file.Close()
		g.file = nil
	}
}

// printGathered prints every distinct non-empty output of procs (which
// pick selects: stdout or stderr) once, under a header naming the nodes
// that produced it and how many processes did; groups come in the order
// of their first rank.
func printGathered(w io.Writer, procs []*proc, pick func(*proc) *gathered) {
	type group struct {
		out   *gathered
		nodes []int
	}
	var order []*group
	byKey := map[string]*group{}
	for _, p := range procs {
		g := pick(p)
		if g == nil {
			continue
		}
		k := g.key()
		if k == "" {
			continue // no output
		}
		gr := byKey[k]
		if gr == nil {
			gr = &group{out: g}
			byKey[k] = gr
			order = append(order, gr)
		}
		gr.nodes = append(gr.nodes, p.node)
	}
	line := strings.Repeat("-", 16)
	for _, gr := range order {
		fmt.Fprintf(w, "%s\n%s (%d)\n%s\n", line, nodespec.Fold(gr.nodes), len(gr.nodes), line)
		gr.out.writeTo(w)
	}
	for _, p := range procs {
		if g := pick(p); g != nil {
			g.close()
		}
	}
}
