// Package kickback is the name service between the master and its nodes:
// kickbackdaemon on the master answers, kickbackproxy on each node (or on
// any Linux host that wants the cluster's names) asks and writes the
// answers into the node's files, where the stock glibc tools read them
// (see pkg/nss for the files and why files).
//
// # Message flow
//
// TCP, port 3045 by default (config `server kickback`, kernel command line
// `beo.kickback=`). The proxy connects and sends requests; the daemon
// answers each in order on the same connection. Every message is one JSON
// object on one line, ended by '\n' — readable with `nc master 3045`:
//
//	→ {"v":1,"op":"names"}
//	← {"v":1,"names":{"hosts":[{"addr":"10.99.0.1","names":["master",".-1"]},…],
//	                  "ethers":[…],"netgroups":[{"name":"cluster","hosts":["n0",…]}]}}
//	→ {"v":1,"op":"user","uid":1000}
//	← {"v":1,"user":{"name":"alice","uid":1000,"gid":1000,"home":…,"shell":…},
//	   "groups":[{"name":"alice","gid":1000},{"name":"users","gid":100,"members":["alice"]}]}
//	← {"v":1,"err":"node 3 has no job of uid 1001"}      (any refusal or failure)
//
// A request line may be at most MaxRequest bytes, a reply MaxReply; a
// message with another "v" is answered with an error naming both
// versions. Version is bumped on any incompatible change.
//
// # Who may ask what
//
// Names are the cluster's /etc/hosts: anyone who reaches the port gets
// them (non-Scyld hosts in the cluster use that). A user's passwd and
// group entries go only to a node that has a job of that user starting or
// running: the daemon takes the asking node's number from the connection's
// source address (config NodeByAddr), never from the message, and asks
// Config.UsesUID. Everything else is refused. Group entries are trimmed:
// their member list holds at most the asking user, so a node learns
// nothing about other users.
//
// On the master, users come from the master's own NSS (Getent runs the
// master's `getent`, so LDAP and NIS users work as the master sees them);
// password hashes never travel ("x").
//
// # The node side
//
// Proxy fetches the names when it starts and every Refresh after, writing
// them into the node's /etc/hosts, /etc/ethers, /etc/netgroup (managed
// blocks) and /etc/nsswitch.conf. It also serves a unix socket
// (DefaultSocket): before bpslave starts a job as uid X it calls
// Ensure(ctx, DefaultSocket, X); the proxy fetches X's entries and upserts
// them into /etc/passwd and /etc/group, and Ensure returns once they are
// there, so the job's first getpwuid already works. The local socket
// speaks the same lines: {"v":1,"op":"user","uid":X} → {"v":1} or
// {"v":1,"err":…}.
package kickback

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/beo-cluster/beo/pkg/nss"
)

// Version of the kickback protocol.
const Version = 1

// DefaultPort is the daemon's TCP port without a `server kickback` line.
const DefaultPort = 3045

// DefaultSocket is the proxy's local socket on a node.
const DefaultSocket = "/run/beo/kickback.sock"

// Limits on one message line, newline included.
const (
	MaxRequest = 4 << 10
	MaxReply   = 64 << 20
)

// The request ops.
const (
	OpNames = "names"
	OpUser  = "user"
)

// Request is one request line.
type Request struct {
	V   int    `json:"v"`
	Op  string `json:"op"`
	UID uint32 `json:"uid,omitempty"`
}

// Reply is one reply line: Err, or the field matching the request's Op
// (none for the local socket's user op).
type Reply struct {
	V      int         `json:"v"`
	Err    string      `json:"err,omitempty"`
	Names  *nss.Data   `json:"names,omitempty"`
	User   *nss.User   `json:"user,omitempty"`
	Groups []nss.Group `json:"groups,omitempty"`
}

// ErrTooLong is returned for a line longer than the limit.
var ErrTooLong = errors.New("kickback: message too long")

// readLine reads one '\n'-terminated line of at most max bytes. A final
// line without '\n' is io.ErrUnexpectedEOF; nothing at all is io.EOF.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, ErrTooLong
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// decode parses one message line into v, strictly: one JSON object, no
// unknown fields, nothing after it.
func decode(line []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("kickback: bad message: %w", err)
	}
	if dec.More() {
		return errors.New("kickback: bad message: data after the object")
	}
	return nil
}

// ReadRequest reads and checks one request.
func ReadRequest(r *bufio.Reader) (Request, error) {
	line, err := readLine(r, MaxRequest)
	if err != nil {
		return Request{}, err
	}
	var q Request
	if err := decode(line, &q); err != nil {
		return Request{}, err
	}
	if q.V != Version {
		return q, fmt.Errorf("kickback: protocol version %d, want %d", q.V, Version)
	}
	switch q.Op {
	case OpNames, OpUser:
	default:
		return q, fmt.Errorf("kickback: unknown op %q", q.Op)
	}
	return q, nil
}

// ReadReply reads one reply and checks its version and contents; a reply
// carrying Err is returned with that error.
func ReadReply(r *bufio.Reader) (Reply, error) {
	line, err := readLine(r, MaxReply)
	if err != nil {
		return Reply{}, err
	}
	var p Reply
	if err := decode(line, &p); err != nil {
		return Reply{}, err
	}
	if p.V != Version {
		return p, fmt.Errorf("kickback: protocol version %d, want %d", p.V, Version)
	}
	if p.Err != "" {
		return p, &RemoteError{Msg: p.Err}
	}
	if p.Names != nil {
		if err := p.Names.Validate(); err != nil {
			return p, fmt.Errorf("kickback: names: %w", err)
		}
	}
	if p.User != nil {
		if err := p.User.Validate(); err != nil {
			return p, fmt.Errorf("kickback: %w", err)
		}
	}
	for _, g := range p.Groups {
		if err := g.Validate(); err != nil {
			return p, fmt.Errorf("kickback: %w", err)
		}
	}
	return p, nil
}

// RemoteError is a refusal or failure reported by the other side.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return "kickback: " + e.Msg }

// write sends one message line.
func write(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
