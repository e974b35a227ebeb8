// blast is bench/move's floor: raw TCP throughput over the cluster
// network, measured in the same run as the moves. The master runs
// `blast -serve ADDR`; a node runs `blast -put ADDR -bytes N` (it sends
// N bytes, the server reads them all and answers one byte) or `blast
// -get ADDR -bytes N` (the server sends N bytes). The client prints the
// seconds from connect to the last byte delivered. `blast -tls N` sends
// N bytes over TLS 1.3 to itself (loopback, both ends in this process),
// as beo's link encrypts, and prints the seconds and the cipher suite:
// what the link's crypto costs this machine's CPU.
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"time"
)

const chunk = 1 << 20

func main() {
	serve := flag.String("serve", "", "listen on `ADDR` and serve put and get")
	put := flag.String("put", "", "send -bytes to the server at `ADDR`")
	get := flag.String("get", "", "receive -bytes from the server at `ADDR`")
	n := flag.Int64("bytes", 0, "how many bytes")
	overTLS := flag.Bool("tls", false, "send -bytes over TLS 1.3 loopback to itself")
	flag.Parse()
	var err error
	switch {
	case *overTLS:
		err = selfTLS(*n)
	case *serve != "":
		err = serveAt(*serve)
	case *put != "":
		err = client(*put, 'p', *n)
	case *get != "":
		err = client(*get, 'g', *n)
	default:
		err = errors.New("usage: blast -serve ADDR | -put ADDR -bytes N | -get ADDR -bytes N")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "blast:", err)
		os.Exit(1)
	}
}

func serveAt(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			var h [9]byte
			if _, err := io.ReadFull(c, h[:]); err != nil {
				return
			}
			n := int64(binary.BigEndian.Uint64(h[1:]))
			switch h[0] {
			case 'p':
				if _, err := io.CopyN(io.Discard, c, n); err == nil {
					c.Write([]byte{1})
				}
			case 'g':
				send(c, n)
			}
		}()
	}
}

// send writes n bytes from a reused buffer.
func send(w io.Writer, n int64) error {
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for n > 0 {
		k := min(n, chunk)
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func client(addr string, op byte, n int64) error {
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	var h [9]byte
	h[0] = op
	binary.BigEndian.PutUint64(h[1:], uint64(n))
	if _, err := c.Write(h[:]); err != nil {
		return err
	}
	if op == 'p' {
		if err := send(c, n); err != nil {
			return err
		}
		var ack [1]byte
		if _, err := io.ReadFull(c, ack[:]); err != nil {
			return fmt.Errorf("no acknowledgement: %w", err)
		}
	} else if _, err := io.CopyN(io.Discard, c, n); err != nil {
		return err
	}
	fmt.Printf("%.6f\n", time.Since(start).Seconds())
	return nil
}

// selfTLS sends n bytes over a TLS 1.3 loopback connection to itself.
func selfTLS(n int64) error {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		return err
	}
	defer l.Close()
	got := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		_, err = io.CopyN(io.Discard, c, n)
		if err == nil {
			_, err = c.Write([]byte{1})
		}
		got <- err
	}()
	start := time.Now()
	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := send(c, n); err != nil {
		return err
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return err
	}
	if err := <-got; err != nil {
		return err
	}
	fmt.Printf("%.6f %s\n", time.Since(start).Seconds(), tls.CipherSuiteName(c.ConnectionState().CipherSuite))
	return nil
}
