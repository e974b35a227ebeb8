package slave

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Exit statuses of a job's children, for their ghosts (kids.go).
//
// A child a job forks on the node is its parent's to wait for, not
// bpslave's, so bpslave cannot learn its exit status by waiting. The
// kernel's process connector (netlink NETLINK_CONNECTOR, CN_IDX_PROC:
// CONFIG_PROC_EVENTS, which Debian's kernels have, and root) reports
// every process's exit with its status, as wait would: the slave keeps
// the last exitKeep of them, and the watcher that finds a child gone
// from the job's cgroup takes its status from there, waiting up to
// exitWait for it (the kernel unlinks an exiting task from its cgroup
// just before it announces the exit). Without the connector (not root,
// a kernel without it) a child's ghost exits 0, as before.
const (
	exitKeep = 4096
	exitWait = 100 * time.Millisecond
)

// exitLog is the node's recent process exits.
type exitLog struct {
	mu    sync.Mutex
	st    map[int]exitRec // process (thread group) id → how it ended
	order []exitRec       // what st held, oldest first
	seq   uint64
	more  chan struct{} // closed at the next record
}

type exitRec struct {
	pid int
	seq uint64
	ws  syscall.WaitStatus
}

// openExits listens to the kernel's process exits until ctx ends; nil
// if it cannot (the reason is logged once).
func openExits(ctx context.Context, log *slog.Logger) *exitLog {
	sock, err := subscribeExits()
	if err != nil {
		log.Info("children's exit statuses unknown: their ghosts exit 0", "err", err)
		return nil
	}
	e := &exitLog{st: map[int]exitRec{}, more: make(chan struct{})}
	go func() {
		for {
			stop := context.AfterFunc(ctx, sock.Close) // ends the read
			err := e.read(sock)
			if stop() { // the socket failed by itself: closed before the next
				sock.Close()
			}
			// Lost events (its buffer overflowed under a burst of
			// exits: those children's ghosts exit 0), or ctx closed it.
			// Subscribe anew.
			log.Debug("process connector", "err", err)
			if ctx.Err() != nil {
				return
			}
			if sock, err = subscribeExits(); err != nil {
				log.Info("children's exit statuses unknown from now on", "err", err)
				return
			}
		}
	}()
	return e
}

// subscribeExits subscribes to the process connector's events, of
// which exitsOnly lets only processes' exits through.
// (netlink.ProcEventMonitor does the same
// but first opens route, xfrm and netfilter sockets it never uses: on a
// node without xfrm_user the kernel asks for that module, and the
// monitor fails.)
func subscribeExits() (*nl.NetlinkSocket, error) {
	sock, err := nl.Subscribe(unix.NETLINK_CONNECTOR, netlink.CN_IDX_PROC)
	if err != nil {
		return nil, err
	}
	if err := exitsOnly(sock.GetFd()); err != nil {
		sock.Close()
		return nil, err
	}
	// Room for a burst of exits between two reads (about 5000; the
	// default holds a few hundred). Only what is queued takes memory.
	unix.SetsockoptInt(sock.GetFd(), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	req := nl.NetlinkRequest{NlMsghdr: unix.NlMsghdr{Type: unix.NLMSG_DONE, Len: unix.SizeofNlMsghdr, Pid: uint32(os.Getpid())}}
	req.AddData(nl.NewCnMsg(netlink.CN_IDX_PROC, netlink.CN_VAL_PROC, netlink.PROC_CN_MCAST_LISTEN))
	if err := sock.Send(&req); err != nil {
		sock.Close()
		return nil, err
	}
	return sock, nil
}

// The connector reports every fork, exec, exit, uid, sid, comm and
// thread exit of every process on the node, and the slave wants only
// processes' exits. exitsOnly attaches a socket filter that drops the
// rest in the kernel, before it is queued: a job that forks and execs
// without pause (a shell loop, make) then wakes bpslave once a process
// instead of three or more times and a thread exit each, and its burst
// is less likely to overflow the socket's buffer (which loses exits,
// and so children's statuses). Offsets are from the netlink header:
// nlmsghdr (16 bytes), cn_msg (20), then proc_event: what, cpu,
// timestamp_ns, and for an exit process_pid, process_tgid. A classic
// BPF load reads big-endian, so the constant is the native bytes of
// PROC_EVENT_EXIT read that way; a message too short for a load is
// dropped.
const (
	offWhat = unix.SizeofNlMsghdr + 20
	offPid  = offWhat + 16
	offTgid = offPid + 4
)

func exitsOnly(fd int) error {
	var b [4]byte
	nl.NativeEndian().PutUint32(b[:], netlink.PROC_EVENT_EXIT)
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: offWhat, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: binary.BigEndian.Uint32(b[:]), SkipTrue: 4},
		bpf.LoadAbsolute{Off: offTgid, Size: 4},
		bpf.TAX{},
		bpf.LoadAbsolute{Off: offPid, Size: 4},
		bpf.JumpIfX{Cond: bpf.JumpEqual, SkipTrue: 1}, // a process, not one of its threads
		bpf.RetConstant{Val: 0},
		bpf.RetConstant{Val: 0xffff},
	})
	if err != nil {
		return err
	}
	f := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		f[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]})
}

// read records the exits the socket reports until it fails.
func (e *exitLog) read(sock *nl.NetlinkSocket) error {
	for {
		msgs, from, err := sock.Receive()
		if err != nil {
			return err
		}
		if from.Pid != nl.PidKernel {
			continue
		}
		for _, m := range msgs {
			if x, ok := exitOf(m); ok && x.ProcessPid == x.ProcessTgid {
				e.record(int(x.ProcessTgid), syscall.WaitStatus(x.ExitCode))
			}
		}
	}
}

// exitOf decodes a process connector message (cn_msg, proc_event) if
// it reports an exit, with the library's types.
func exitOf(m syscall.NetlinkMessage) (netlink.ExitProcEvent, bool) {
	var (
		x  netlink.ExitProcEvent
		h  netlink.ProcEventHeader
		cm nl.CnMsg
	)
	if m.Header.Type != unix.NLMSG_DONE {
		return x, false
	}
	r := bytes.NewReader(m.Data)
	order := nl.NativeEndian()
	if binary.Read(r, order, &cm) != nil || binary.Read(r, order, &h) != nil || h.What != netlink.PROC_EVENT_EXIT {
		return x, false
	}
	return x, binary.Read(r, order, &x) == nil
}

// record notes that pid ended with ws.
func (e *exitLog) record(pid int, ws syscall.WaitStatus) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	r := exitRec{pid: pid, seq: e.seq, ws: ws}
	e.st[pid] = r
	e.order = append(e.order, r)
	if len(e.order) > exitKeep {
		if old := e.order[0]; e.st[old.pid].seq == old.seq {
			delete(e.st, old.pid)
		}
		e.order = e.order[1:]
	}
	close(e.more)
	e.more = make(chan struct{})
}

// forget drops what is known of pid's exit: a new process has the pid.
func (e *exitLog) forget(pid int) {
	if e == nil {
		return
	}
	e.mu.Lock()
	delete(e.st, pid)
	e.mu.Unlock()
}

// status is how pid ended, waiting until until for the kernel's word.
func (e *exitLog) status(pid int, until time.Time) (syscall.WaitStatus, bool) {
	if e == nil {
		return 0, false
	}
	deadline := time.NewTimer(time.Until(until))
	defer deadline.Stop()
	for {
		e.mu.Lock()
		r, ok := e.st[pid]
		more := e.more
		e.mu.Unlock()
		if ok {
			return r.ws, true
		}
		select {
		case <-more:
		case <-deadline.C:
			return 0, false
		}
	}
}
