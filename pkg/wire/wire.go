// Package wire is the beo protocol: the messages bpmaster, bpslave and the
// local clients (bpsh, bpcp, bpctl, bpstat, bplib) exchange, and how they are
// framed on a stream.
//
// # Layers
//
// Every connection — node to master over TCP, client to master over the
// unix socket — carries a yamux session (github.com/hashicorp/yamux), so
// each operation gets its own stream with its own flow control; a slow
// reader of one job never stalls another. Node connections run yamux over
// TLS 1.3 with pinned ed25519 keys (see pkg/link). Nothing here is
// encrypted or authenticated by itself.
//
// # Framing
//
// A stream starts with one Header frame naming its Op. After that, each op
// defines what follows: more frames, or raw bytes (process output, file
// contents as a tar stream). A frame is
//
//	uint32 big-endian length N (1 ≤ N ≤ MaxFrame) | N bytes of JSON
//
// JSON keeps the decoder a well-tested library and the protocol readable in
// a packet dump; bulk data never goes through it.
//
// # Message flow
//
// Node session (the slave dials; the master accepts):
//
//	slave  → master  stream 1: Header{Op: OpHello, Hello}; master → HelloReply.
//	                  The stream stays open: master sends Ping, slave answers
//	                  Pong; either side closing it ends the session.
//	master → slave   OpExec: Header{Exec}; slave → Need{hashes it lacks};
//	                  master → per hash a FileHeader frame then Size raw bytes;
//	                  slave → Started{PID} or Result{Err} (one frame, read
//	                  as ExecReply); then master → Signal frames, slave →
//	                  Update frames while the job's processes change, and
//	                  with the job's Usage (its cgroup's accounting) about
//	                  a second in and then every usage interval, and one
//	                  Result (exit status, the final Usage) at the end
//	                  (read as Event).
//	                  Unless Exec.NoIO or Exec.NoStdin, the master opens
//	                  an OpAttach stream (FD 0) with the same ID right
//	                  after the exec stream, without waiting for any reply;
//	                  it carries the process's stdin, raw, closed at EOF.
//	                  The slave pairs it with the exec whichever arrives
//	                  first (pkg/link Rendezvous).
//	slave  → master  Unless Exec.NoIO, the slave opens an OpAttach stream
//	                  (FD 1 or 2) only when the process's stdout or stderr
//	                  first yields bytes — never for a silent process; it
//	                  carries the rest raw and is closed at EOF. Every one
//	                  is open before the Result, which names them
//	                  (Result.Opened), so the master relays all their
//	                  bytes before the exit status. These and OpClient
//	                  (below) are the only streams a node may open
//	                  besides the hello stream;
//	                  the master refuses any other, and any for an exec it
//	                  did not start on that session, one that has ended,
//	                  or an FD already attached.
//	slave  → master  OpClient: Header{Client{Cred, PID}}, then raw bytes
//	                  both ways: a client connection made on the node
//	                  (bpsh, bpstat, bpcp … run by a job, on bpslave's
//	                  node-local socket), relayed whole. The master runs
//	                  a client session (yamux server) over the stream,
//	                  exactly as over its own unix socket, with the
//	                  caller the node reports (Client.Cred: the node's
//	                  SO_PEERCRED) on that node. The master accepts it
//	                  only on an authenticated node session, so the node's
//	                  key vouches for the claim (pkg/master: Clients).
//	master → slave   OpPut: Header{File}; raw tar stream; slave → Result.
//	master → slave   OpGet: Header{File}; slave → Result, then a raw tar stream.
//	master → slave   OpControl: Header{Control}; slave → Result, then acts.
//	master → slave   OpStage: Header{Stage{Files}}; slave → Need; master →
//	                  FileHeader + bytes per hash, as for OpExec; slave →
//	                  Result once the files are cached and placed (bplib).
//	master → slave   OpMount: Header{Mount{Mounts, Timeout}}, while the
//	                  node is in boot (the node's fstab lines, in order);
//	                  slave → one MountResult per mount attempted, in
//	                  order, each within Timeout, and closes the stream
//	                  after the last one or after the first failure of a
//	                  Fatal mount. A node with no fstab lines gets no
//	                  OpMount.
//
// Client session (a local client dials the unix socket; the master
// identifies it by SO_PEERCRED, never by anything it says):
//
//	OpStatus  → Status                      (bpstat)
//	OpStates  → States                      (bpsh, bpcp: node specs)
//	OpWatch   → Status, then a NodeInfo frame per change  (bpstat -U)
//	OpProcs   → Procs                       (bpstat -p / -P)
//	OpRun     Header{Exec with Node and an ID the client chose, unique on
//	          its connection}; → Started | Result{Err} (ExecReply); then Signal frames
//	          from the client (a ghost's pid as Signal{Ghost}), the
//	          node's Update frames, and one Result. Unless NoIO or NoStdin the
//	          client opens an OpAttach stream (FD 0) with that ID right
//	          after the exec stream, without waiting; it pairs with execs
//	          of the same connection only. The master opens an OpAttach
//	          stream (FD 1 or 2, the client's ID) to the client when the
//	          node's stream for that FD comes — only when the process
//	          writes — and splices the two; every one is open, copied and
//	          closed before the Result, which names them (Result.Opened).
//	          The client takes only those: FD 1 or 2 of an exec it started
//	          and that has not finished, each once; it refuses any other
//	          stream the master opens. Exec.Version is the client's
//	          Version: any other is answered Result{Code: CodeVersion,
//	          Version} (see below). (OpExec, the client's exec op until
//	          Version 3, is answered Result{Err: ClientTooOld} the same way.)
//	OpKill    Header{Kill} → Result         (signal a remote process by pid)
//	OpPut/OpGet with File.Node, as for nodes.
//	OpPut     Header{File with Sources}: the master packs the sources
//	          itself, reading them as the caller (so the kernel checks
//	          the caller's permissions), and sends the node an ordinary
//	          OpPut; no tar stream follows from the client, which keeps
//	          its side open until the one Result (the master's own error,
//	          naming the file, or the node's Result). The client closing
//	          its side first cancels: the master cuts the node's stream
//	          short and the node lands nothing. Result{Err: SourcesRefused}
//	          asks the client to send the stream itself.
//	OpControl Header{Control with Nodes} → Result
//	OpLib     Header{Lib} → LibList         (bplib)
//	OpWhere   Header{} → Where              (the client's host: the node it
//	          runs on, relayed by that node's bpslave, or -1, the
//	          master; pkg/bproc asks before running on node -1, which
//	          from a node means the master)
//	OpRun, OpPut, OpGet with Node -1: on the master itself, as the
//	          caller (a client on a node: `bpsh -1`, `bpcp f master:/x`).
//	OpReload  Header{} → Result             (`beo master reload`: root only;
//	          Err holds every file:line the config was refused for)
//
// A connection the master will not serve — its uid holds too many
// already — gets one stream from the master, Header{Op: OpRefuse,
// Refuse{Reason}}, and nothing else: the master answers none of its
// streams and closes it shortly after. The client fails every call with
// Reason ("too many connections for uid 1003 (256)"). bpslave's node-local
// client socket answers the same way, with Refuse.NoMaster, a connection
// it cannot relay because the node has no session with its master.
//
// # Errors
//
// A failure travels as data: Result.Err is the message for people, never
// prefixed with the node it is about; Result.Code its kind (permission,
// not-found, node-down, version, refused, invalid, internal: see Code);
// Result.Node the node it is about, absent when none. The slave sets its
// own node on every failure it reports; the master sets the node of the
// exec, put, get or control it failed, and forwards a node's Result as
// it came. LibList and HelloReply carry Err and Code the same way.
// Within master and slave a failure is an *Error (NodeErrorf, Errorf,
// OnNode), wire.Fail makes the Result and Result.Failure reads it back;
// pkg/bproc turns it into its own error types, and only a client prints
// the node ("node 3: permission denied", bpsh's "3: permission denied").
// A receiver takes a missing Code for CodeInternal. Both fields are new
// optional fields beside Err, so a peer that does not know them still
// reads the message.
//
// Version is bumped on any incompatible change; a node whose Hello carries
// another Version (or another build hash) is refused.
//
// Clients do not say Hello (one round trip less per bpsh): the exec
// request says its Version instead (Exec.Version, from Version 5), and a
// master answers one of another Version with Result{Code: CodeVersion,
// Version: its own}, before anything runs; pkg/bproc compares the two to
// say which side is older. A request for an op the master does not know
// is answered the same way, so an op added later fails at once against
// an older master instead of waiting for streams it never opens. Nothing
// compares message texts. Older peers: a client of Version 4 sends no
// Exec.Version and gets the CodeVersion Result (it prints its Err); a
// master of Version 4 ignores Exec.Version and runs the exec, whose
// failures then name the node in Err too; a master of Version 3 or older
// answers `unknown op "run"` without a Code, which the client reports as
// it reads.
package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Version of this protocol. 2: stdio streams are opened with the exec
// stream on both hops (clients choose the exec ID; no ack frame). 3: on
// the node hop the slave opens the stdout and stderr streams itself, when
// output first appears, and Result.Opened names them: a silent job costs
// no output streams (the client hop is unchanged). 4: the same on the
// client hop, the master opening the client's output streams; a client's
// exec is OpRun (OpExec from a client is refused: ClientTooOld). The node
// hop is as in 3. 5 (one release, two changes): OpMount on the node hop
// (an older slave would refuse it, leaving every node with an fstab in
// error); failures are data (Result.Code, Result.Node) and a client's
// exec says its Version (Exec.Version), checked by the master.
//
// OpClient and OpWhere did not bump it either: they are new ops, and a
// peer that does not know them refuses them (a node's OpClient stream is
// closed; OpWhere is answered CodeVersion, which pkg/bproc reads as "on
// the master").
//
// Move.Fork, Update.Fork, Exec.Fork and Where.Forked (rfork) did not
// bump it: optional fields of one build's master and clients; a client
// that ignores an Update.Fork adopts no copy, and the fork fails with
// that reason after a few seconds.
//
// Update.Usage and Result.Usage (job accounting) did not bump it: they
// are optional fields, which a peer that does not know them skips, and
// master and nodes are one build anyway (Hello). Clients never see an
// Update's Usage; the Result's reaches them, and an older client
// ignores it.
//
// File.Sources did not bump it: Version is checked between master and
// node, whose OpPut is unchanged, and clients and master are one binary.
// (A client of this version talking to an older master that is still
// running would wait: that master relays the client's open, empty stream
// to the node. Interrupting the copy ends it, and nothing lands.)
const Version = 5

// MaxFrame is the largest frame accepted. Big enough for an exec request
// with a large environment and library closure; bulk data never uses frames.
const MaxFrame = 4 << 20

// ErrFrameSize is returned for a zero or oversized frame length.
var ErrFrameSize = errors.New("wire: bad frame length")

// Write encodes v as one frame.
func Write(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("wire: encode %T: %w", v, err)
	}
	if len(b) > MaxFrame {
		return fmt.Errorf("wire: %T is %d bytes: %w", v, len(b), ErrFrameSize)
	}
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	_, err = w.Write(buf)
	return err
}

// Read decodes one frame into v. It reads exactly the frame and nothing
// more, so raw bytes that follow stay in r.
func Read(r io.Reader, v any) error { return ReadWithin(r, v, nil) }

// ReadWithin is Read with the frame's length charged to budget while it
// is read and decoded (nil: no budget); a frame budget cannot take now
// is ErrBusy, its body left unread. A frame's memory grows with what
// arrives, not with the length it announces: a peer that announces 4 MiB
// and stalls holds what it sent.
func ReadWithin(r io.Reader, v any, budget *Budget) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > MaxFrame {
		return fmt.Errorf("%w: %d", ErrFrameSize, n)
	}
	if !budget.take(int64(n)) {
		return fmt.Errorf("%w (a frame of %d bytes)", ErrBusy, n)
	}
	defer budget.give(int64(n))
	var buf bytes.Buffer
	buf.Grow(int(min(n, 64<<10)))
	if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
		if err == io.EOF && buf.Len() > 0 {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("wire: truncated frame: %w", err)
	}
	if err := json.Unmarshal(buf.Bytes(), v); err != nil {
		return fmt.Errorf("wire: decode %T: %w", v, err)
	}
	return nil
}

// ErrBusy is ReadWithin's refusal of a frame its Budget cannot take.
var ErrBusy = errors.New("wire: too many requests being read at once")

// Budget bounds the bytes of the frames its readers (ReadWithin) hold
// at once: the requests of one user being read, so that streams that
// each announce a large frame and stall cannot take the master's memory.
// A nil Budget bounds nothing.
type Budget struct {
	Max int64 // bytes

	mu   sync.Mutex
	used int64
}

func (b *Budget) take(n int64) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used > 0 && b.used+n > b.Max {
		return false // one frame, however large, always fits alone
	}
	b.used += n
	return true
}

func (b *Budget) give(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}
