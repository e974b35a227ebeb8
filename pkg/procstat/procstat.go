// Package procstat reads the few fields of /proc/PID/stat that beo uses:
// a process's state, parent and process group. The line is
// `pid (comm) state ppid pgrp …`, and comm may hold spaces and
// parentheses, so the fields are counted from the last ')'.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// Stat is what beo reads of a process's stat line.
type Stat struct {
	State byte // R, S, D, T, Z, …
	PPID  int  // its parent
	PGID  int  // its process group
}

// Parse reads a stat line.
func Parse(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("procstat: no ')' in %.40q", b)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 3 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("procstat: short line %.60q", b)
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgid, err2 := strconv.Atoi(string(f[2]))
	if err1 != nil || err2 != nil {
		return Stat{}, fmt.Errorf("procstat: bad numbers in %.60q", b)
	}
	return Stat{State: f[0][0], PPID: ppid, PGID: pgid}, nil
}

// Read reads /proc/PID/stat.
func Read(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return Parse(b)
}
