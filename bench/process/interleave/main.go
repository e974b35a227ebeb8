// Command interleave times commands run one after another in turn —
// A, B, C, A, B, C, … each round starting with the next one — so that a
// shared machine's load, which drifts within seconds, weighs on all of
// them alike, and the ratio of two of them means something.
//
//	interleave -r RUNS -w WARMUP -out DIR NAME=CMD...
//
// CMD is split on spaces; leading VAR=value words are added to its
// environment (BEO_SOCKET of the simulation it talks to). Each command
// is started as hyperfine -N starts one (fork+exec of the program, stdin
// and stdout /dev/null, no shell) and waited for; DIR/NAME.json gets its
// times in hyperfine's export shape (results[0]: median, mean, stddev,
// times, in seconds). A command that fails makes interleave fail.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type command struct {
	name  string
	path  string
	argv  []string
	env   []string
	times []float64
}

func main() {
	runs := flag.Int("r", 40, "timed runs of each command")
	warm := flag.Int("w", 3, "untimed rounds first")
	out := flag.String("out", ".", "directory for NAME.json")
	flag.Parse()
	if err := run(*runs, *warm, *out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "interleave:", err)
		os.Exit(1)
	}
}

func run(runs, warm int, out string, specs []string) error {
	var cmds []*command
	for _, s := range specs {
		name, line, ok := strings.Cut(s, "=")
		f := strings.Fields(line)
		if !ok || name == "" || len(f) == 0 {
			return fmt.Errorf("%q: want NAME=CMD", s)
		}
		c := &command{name: name, env: os.Environ()}
		for len(f) > 1 && strings.Contains(f[0], "=") {
			key, _, _ := strings.Cut(f[0], "=")
			c.env = slices.DeleteFunc(c.env, func(e string) bool { return strings.HasPrefix(e, key+"=") })
			c.env = append(c.env, f[0])
			f = f[1:]
		}
		p, err := exec.LookPath(f[0])
		if err != nil {
			return err
		}
		c.path, c.argv = p, f
		cmds = append(cmds, c)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	for i := range warm + runs {
		for j := range cmds {
			c := cmds[(i+j)%len(cmds)]
			t := time.Now()
			p, err := os.StartProcess(c.path, c.argv, &os.ProcAttr{Env: c.env, Files: []*os.File{null, null, os.Stderr}})
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			st, err := p.Wait()
			d := time.Since(t)
			if err != nil || !st.Success() {
				return fmt.Errorf("%s: %v %v", c.name, st, err)
			}
			if i >= warm {
				c.times = append(c.times, d.Seconds())
			}
		}
	}
	for _, c := range cmds {
		if err := write(filepath.Join(out, c.name+".json"), c.times); err != nil {
			return err
		}
	}
	return nil
}

// write stores times as hyperfine's --export-json does.
func write(path string, times []float64) error {
	s := slices.Clone(times)
	slices.Sort(s)
	median := s[len(s)/2]
	if len(s)%2 == 0 {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	var sum float64
	for _, t := range s {
		sum += t
	}
	mean := sum / float64(len(s))
	var v float64
	for _, t := range s {
		v += (t - mean) * (t - mean)
	}
	stddev := 0.0
	if len(s) > 1 {
		stddev = math.Sqrt(v / float64(len(s)-1))
	}
	b, err := json.Marshal(map[string]any{"results": []any{map[string]any{
		"median": median, "mean": mean, "stddev": stddev, "times": times}}})
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
