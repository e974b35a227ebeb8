// Command fanout is the floor bench/process compares bpsh against: the
// least a remote-execution tool must do, with nothing else.
//
//	fanout serve -n N -port P   N agents, one on each of 127.1.0.1..N:P;
//	                            each connection: read a byte, fork+exec
//	                            /bin/true, wait, answer its exit status
//	fanout -n N -port P         dial every agent at once, ask, wait for all
//
// No encryption, no framing, no authentication, no stdio forwarding: a
// Go process start, N loopback connects and N fork+execs. TESTING.md calls
// this the Go connect+fork+exec floor (one agent) and the Go fan-out
// floor (64).
package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
)

func main() {
	serve := len(os.Args) > 1 && os.Args[1] == "serve"
	args := os.Args[1:]
	if serve {
		args = args[1:]
	}
	fs := flag.NewFlagSet("fanout", flag.ExitOnError)
	n := fs.Int("n", 1, "number of agents")
	port := fs.Int("port", 0, "agent port")
	fs.Parse(args)
	if *port == 0 || *n < 1 || *n > 250 {
		fmt.Fprintln(os.Stderr, "usage: fanout [serve] -n N(1..250) -port P")
		os.Exit(2)
	}
	if serve {
		err := agents(*n, *port)
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
	if err := ask(*n, *port); err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
}

func addr(i, port int) string {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, 0, byte(i + 1)}), uint16(port)).String()
}

func agents(n, port int) error {
	errc := make(chan error, n)
	for i := range n {
		ln, err := net.Listen("tcp", addr(i, port))
		if err != nil {
			return err
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					errc <- err
					return
				}
				go func() {
					defer c.Close()
					b := make([]byte, 1)
					if _, err := c.Read(b); err != nil {
						return
					}
					status := byte(0)
					if exec.Command("/bin/true").Run() != nil {
						status = 1
					}
					c.Write([]byte{status})
				}()
			}
		}()
	}
	return <-errc
}

func ask(n, port int) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr(i, port))
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			b := []byte{1}
			if _, err := c.Write(b); err != nil {
				errs[i] = err
				return
			}
			if _, err := c.Read(b); err != nil || b[0] != 0 {
				errs[i] = fmt.Errorf("agent %d: status %d, %v", i, b[0], err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
