// hog is bench/move's migrating process: it fills -mib MiB of memory
// with incompressible bytes (a xorshift stream, every page touched),
// prints "ready", then a counter line every -every. On SIGTERM it reads
// the memory again and prints "intact" if every byte is what it wrote
// (or "corrupt at OFFSET"), then exits 0: the bench sees that the moved
// process kept its memory and its stdout.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// fill writes the xorshift64 stream from seed into b (len a multiple of 8).
func fill(b []byte, seed uint64) {
	x := seed
	for i := 0; i+8 <= len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(b[i:], x)
	}
}

// check returns the offset of the first 8 bytes that differ from fill's
// stream, or -1.
func check(b []byte, seed uint64) int {
	x := seed
	for i := 0; i+8 <= len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		if binary.LittleEndian.Uint64(b[i:]) != x {
			return i
		}
	}
	return -1
}

func main() {
	mib := flag.Int("mib", 1, "MiB of memory to fill")
	every := flag.Duration("every", 200*time.Millisecond, "time between counter lines")
	flag.Parse()
	const seed = 0x9e3779b97f4a7c15
	mem := make([]byte, *mib<<20)
	fill(mem, seed)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	fmt.Printf("ready %d MiB\n", *mib)
	tick := time.NewTicker(*every)
	for n := 0; ; n++ {
		select {
		case <-tick.C:
			fmt.Printf("tick %d\n", n)
		case <-term:
			if off := check(mem, seed); off >= 0 {
				fmt.Printf("corrupt at %d\n", off)
				os.Exit(1)
			}
			fmt.Println("intact")
			os.Exit(0)
		}
	}
}
