// mover is the e2e tests' migrating program: it counts, one line every
// -every, and after -before lines moves itself to node -to with
// bproc.Move (the libbproc call); it prints where it is after the move
// and exits with status 7 after -after more lines, so a test sees that
// its output, stdin-less life and exit status went on across the move.
// Without -to it only counts (a process bpmove moves from outside).
// -fork N forks a copy onto node N after -before lines instead
// (bproc.Rfork): the original prints "forked: pid P on node N" and goes
// on as above; the copy prints "copy on node N", then -copy-after lines
// "copy line I" (I going on from the original's count) and exits with
// status 5.
// -hold keeps an established TCP connection (to itself, over loopback)
// open all along; -keep FILE creates FILE and keeps it open: a file the
// node it would move to does not have.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/beo-cluster/beo/pkg/bproc"
)

func main() {
	to := flag.Int("to", -2, "node to move to after -before lines (-2: never)")
	before := flag.Int("before", 3, "lines before the move")
	after := flag.Int("after", 3, "lines after the move")
	every := flag.Duration("every", 200*time.Millisecond, "time between lines")
	hold := flag.Bool("hold", false, "hold an established TCP connection")
	keep := flag.String("keep", "", "create this file and keep it open (a file another node lacks)")
	fork := flag.Int("fork", -2, "node to fork a copy onto after -before lines (-2: never)")
	copyAfter := flag.Int("copy-after", 3, "lines the copy prints")
	flag.Parse()
	if *keep != "" {
		f, err := os.Create(*keep)
		if err != nil {
			fmt.Println("keep:", err)
			os.Exit(4)
		}
		defer f.Close()
	}
	if *hold {
		var lc net.ListenConfig
		lc.SetMultipathTCP(false) // plain TCP, as most programs' sockets
		l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Println("hold:", err)
			os.Exit(4)
		}
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			fmt.Println("hold:", err)
			os.Exit(4)
		}
		s, err := l.Accept()
		if err != nil {
			fmt.Println("hold:", err)
			os.Exit(4)
		}
		defer c.Close()
		defer s.Close()
	}
	n := 0
	prefix := ""
	count := func(k int) {
		for range k {
			fmt.Printf("%sline %d\n", prefix, n)
			n++
			time.Sleep(*every)
		}
	}
	count(*before)
	if *to != -2 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err := bproc.Move(ctx, *to)
		cancel()
		if err != nil {
			fmt.Printf("move: %v\n", err)
			os.Exit(3)
		}
		c, err := bproc.Dial(context.Background(), "")
		if err == nil {
			where, _ := c.Where(context.Background())
			c.Close()
			fmt.Printf("moved to node %d\n", where)
		}
	}
	if *fork != -2 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		pid, err := bproc.Rfork(ctx, *fork)
		cancel()
		switch {
		case err != nil:
			fmt.Printf("rfork: %v\n", err)
		case pid == 0:
			where := -2
			if c, err := bproc.Dial(context.Background(), ""); err == nil {
				where, _ = c.Where(context.Background())
				c.Close()
			}
			fmt.Printf("copy on node %d\n", where)
			prefix = "copy "
			count(*copyAfter)
			os.Exit(5)
		default:
			fmt.Printf("forked: pid %d on node %d\n", pid, *fork)
		}
	}
	count(*after)
	os.Exit(7)
}
