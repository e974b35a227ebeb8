package wire

import (
	"os"
	"time"
)

// Op names what a stream is for.
type Op string

const (
	OpHello   Op = "hello"
	OpExec    Op = "exec"
	OpRun     Op = "run" // a client's exec (Version 4 on): see the package doc
	OpAttach  Op = "attach"
	OpPut     Op = "put"
	OpGet     Op = "get"
	OpControl Op = "control"
	OpStatus  Op = "status"
	OpWatch   Op = "watch"
	OpProcs   Op = "procs"
	OpKill    Op = "kill"
	OpLib     Op = "lib"
	OpStage   Op = "stage"
	OpStates  Op = "states"
	OpRefuse  Op = "refuse"
	OpReload  Op = "reload"
	OpMount   Op = "mount"  // master → slave: the node's fstab lines (Version 5)
	OpClient  Op = "client" // node → master: a client on the node (see the package doc)
	OpWhere   Op = "where"  // client → master: which host is the client on
	// OpMove (client → master): move a running remote process to another
	// node; OpCheckpoint (master → slave): checkpoint one for a move.
	OpMove       Op = "move"
	OpCheckpoint Op = "checkpoint"
)

// Header is the first frame of every stream. Exactly the field matching Op
// is set.
type Header struct {
	Op      Op       `json:"op"`
	Hello   *Hello   `json:"hello,omitempty"`
	Exec    *Exec    `json:"exec,omitempty"`
	Attach  *Attach  `json:"attach,omitempty"`
	File    *File    `json:"file,omitempty"`
	Control *Control `json:"control,omitempty"`
	Kill    *Kill    `json:"kill,omitempty"`
	Lib     *Lib     `json:"lib,omitempty"`
	Stage   *Stage   `json:"stage,omitempty"`
	Refuse  *Refuse  `json:"refuse,omitempty"`
	Mount   *Mounts  `json:"mount,omitempty"`
	Client  *Client  `json:"client,omitempty"`
	Move    *Move    `json:"move,omitempty"`
	// Checkpoint: the Exec (ID, Path, Files) names the job and the
	// checkpoint tool's closure (OpCheckpoint).
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
}

// Move asks the master to move a running remote process (client →
// master, OpMove): the process of ghost pid Ghost, or PID on Node, to
// Target, keeping its pid on the master (its ghost), its stdio and its
// job. Self: the caller is that process, on a node, and stops itself
// (SIGSTOP) once the master has answered; the process continues, on
// Target if the move succeeded, when the master sends it SIGCONT. The answer is a Result; after a move its Status is the
// process's new pid on Target.
//
// Fork (with Self: bproc.Rfork, libbproc's bproc_rfork): a copy of the
// process is made on Target and the process stays where it is. The
// master answers at once, as for Self; the process stops itself and is
// continued where it was once its copy runs on Target (or could not be
// made), and asks OpWhere, whose Forked says which. The copy is
// continued on Target: it is the child, whose Where names Target.
type Move struct {
	Node   int  `json:"node"`
	PID    int  `json:"pid"`
	Ghost  int  `json:"ghost,omitempty"`
	Target int  `json:"target"`
	Self   bool `json:"self,omitempty"`
	Fork   bool `json:"fork,omitempty"`
}

// Fork tells a client that the process of its exec forked a copy of
// itself onto Node (master → client, in an Update; Move.Fork). The
// client adopts the copy: it runs an exec (OpRun) whose Exec.Fork is
// ID, which relays the copy as any remote process — its output with the
// client's, its own ghost, its own exit status. A copy no client adopts
// within a few seconds is not made.
type Fork struct {
	ID   uint64 `json:"id"`
	Node int    `json:"node"`
}

// Forked is a process's own last rfork (Where.Forked): its copy's pid on
// Node, or why there is none (Err, Code, and ErrNode the node the
// failure is about, as Result's).
type Forked struct {
	Node    int    `json:"node"`
	PID     int    `json:"pid,omitempty"`
	Err     string `json:"err,omitempty"`
	Code    Code   `json:"code,omitempty"`
	ErrNode *int   `json:"err_node,omitempty"`
}

// Checkpoint asks a slave to checkpoint job ID's process tree (master →
// slave, OpCheckpoint). The stream then carries, like an exec's start,
// Need and the files of Tool's closure (the checkpoint program, at Tool
// on the node); the slave answers a CheckpointReply and, unless it
// failed, Size bytes of image (a tar stream); the process tree is
// stopped (SIGSTOP) for the checkpoint and left so until the master's
// Verdict: Commit ends it on this node (its exec ends with
// Result.Moved), otherwise it continues here.
type Checkpoint struct {
	ID    uint64    `json:"id"`
	Tool  string    `json:"tool"`
	Self  bool      `json:"self,omitempty"` // the process stops itself: wait for it
	Keep  bool      `json:"keep,omitempty"` // Commit leaves it running (rfork)
	Files []FileRef `json:"files,omitempty"`
}

// CheckpointReply is a slave's answer to Checkpoint: the image's size and
// the pipes of the process's fds 0–2 (their inode numbers, 0: not a pipe
// of the job's), which the restore replaces with its own; Err and Code
// as in Result.
type CheckpointReply struct {
	Size  int64     `json:"size"`
	Pipes [3]uint64 `json:"pipes"`
	// Continue: the process was running (or stopped itself to move):
	// continue it (SIGCONT) once it runs on its new node. A process a
	// user had stopped stays stopped.
	Continue bool   `json:"continue,omitempty"`
	Cgroup   string `json:"cgroup,omitempty"` // the job's cgroup's name, see Restore
	Err      string `json:"err,omitempty"`
	Code     Code   `json:"code,omitempty"`
}

// Verdict ends a Checkpoint: Commit after the process runs on its new
// node, not otherwise.
type Verdict struct {
	Commit bool `json:"commit"`
}

// Restore makes an Exec restore a checkpoint instead of starting Path:
// after the files (Exec.Files holds the program's closure and the tool's)
// come Size bytes of image (a tar stream), restored with Tool; the
// process's pipes named Pipes are replaced by this exec's own stdio.
type Restore struct {
	Tool     string    `json:"tool"`
	Size     int64     `json:"size"`
	Pipes    [3]uint64 `json:"pipes"`
	Continue bool      `json:"continue,omitempty"` // as CheckpointReply.Continue
	// Cgroup is the name of the job's group on the node it left: the
	// restored job gets a group of that name, where the process finds
	// the files of it it had open (Go's runtime keeps cpu.max open).
	Cgroup string `json:"cgroup,omitempty"`
}

// Mounts asks a node to mount file systems, in order (master → slave,
// OpMount): its fstab lines, resolved by the master (pkg/fstab).
type Mounts struct {
	Mounts []Mount `json:"mounts"`
	// Timeout bounds each mount attempt (0: the slave's default). A mount
	// still hanging then is reported failed and left behind.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Files are files the node writes before it mounts: copies of the
	// master's /etc that go with its /usr (Debian's alternatives links,
	// OpenMPI's system parameters) for a node that mirrors the master's
	// /usr (an older slave ignores the field: no files, as before).
	Files []EtcFile `json:"files,omitempty"`
}

// EtcFile is a file a node writes at Path (absolute): a symbolic link to
// Link when Link is set, else a regular file of Data with permission
// bits Mode.
type EtcFile struct {
	Path string      `json:"path"`
	Link string      `json:"link,omitempty"`
	Data []byte      `json:"data,omitempty"`
	Mode os.FileMode `json:"mode,omitempty"`
}

// Mount is one file system to mount: mount(2)'s source, target, type and
// options (flags and data in one comma list, see fstab.KernelArgs); type
// swap is swapon(2) of Source.
type Mount struct {
	Source  string `json:"source"`
	Target  string `json:"target"`
	Type    string `json:"type"`
	Options string `json:"options,omitempty"`
	Fatal   bool   `json:"fatal,omitempty"`  // a failure stops the list (the node goes error)
	Mirror  bool   `json:"mirror,omitempty"` // the master's own tree at the same path: programs under it are not sent
	File    string `json:"file,omitempty"`   // the fstab file and line, for messages
	Line    int    `json:"line,omitempty"`
}

// MountResult reports one Mount (slave → master, one frame per mount
// attempted, in order).
type MountResult struct {
	Index   int           `json:"index"`
	Err     string        `json:"err,omitempty"`
	Already bool          `json:"already,omitempty"` // mounted before: nothing done
	Took    time.Duration `json:"took"`
}

// Client opens a node's relay of one client connection on the node
// (OpClient, node → master): the caller as the node's kernel reports it
// (SO_PEERCRED, groups from /proc), and its pid on the node.
type Client struct {
	Cred Cred `json:"cred"`
	PID  int  `json:"pid"`
}

// Where answers OpWhere: the node the asking client runs on, -1 for the
// master itself. Err and Code as in Result (a master that does not know
// the op answers a Result: Err set).
//
// Forked is set, once, for a process on a node that forked a copy of
// itself (Move.Fork) since it last asked.
type Where struct {
	Node   int     `json:"node"`
	Forked *Forked `json:"forked,omitempty"`
	Err    string  `json:"err,omitempty"`
	Code   Code    `json:"code,omitempty"`
}

// Refuse is the master's one stream on a client connection it will not
// serve (too many connections held by the caller's uid): the client
// reports Reason and closes.
type Refuse struct {
	Reason string `json:"reason"`
	// NoMaster: the refusal is a node's (bpslave's client socket): the
	// node has no session with its master, so nothing can be served.
	NoMaster bool `json:"no_master,omitempty"`
}

// Stage asks a node to cache and place files ahead of any exec: the
// libraries bplib lists (master → slave).
type Stage struct {
	Files []FileRef `json:"files"`
}

// Hello is a node's introduction.
type Hello struct {
	Version  int      `json:"version"`
	Build    string   `json:"build"`
	Node     int      `json:"node"` // the node number the slave believes it is; -1 = ask the master
	MACs     []string `json:"macs,omitempty"`
	Hostname string   `json:"hostname,omitempty"`
	// Secondary: the node has its primary master elsewhere (config
	// masterorder) and connects here only to be seen ("[up]"); it
	// obeys nothing this master sends.
	Secondary bool `json:"secondary,omitempty"`
}

// HelloReply accepts (Err == "") or refuses a node; Code is CodeVersion
// for another Version or build.
type HelloReply struct {
	Node         int           `json:"node"`
	PingInterval time.Duration `json:"ping_interval"`
	Err          string        `json:"err,omitempty"`
	Code         Code          `json:"code,omitempty"`
}

// Ping and Pong are the heartbeat on the hello stream.
type Ping struct {
	Seq uint64 `json:"seq"`
}

// Pong answers Ping with the same Seq.
type Pong struct {
	Seq uint64 `json:"seq"`
}

// Cred is who a process or file operation runs as on the node, and the
// one type for a caller's identity: the master reads it from the kernel
// (SO_PEERCRED), checks it against the node's permissions (pkg/nodes) and
// sends that same value to the node, which takes it (pkg/creds). This
// package depends on nothing, so it owns the shape every side shares.
type Cred struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}

// Rlimit is one resource limit to apply to a remote process.
type Rlimit struct {
	Resource int    `json:"resource"`
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

// FileRef names one file of a program's closure by content.
type FileRef struct {
	Path   string `json:"path"`             // where it must appear on the node
	Hash   string `json:"hash,omitempty"`   // sha256 hex; empty for a symlink
	Size   int64  `json:"size,omitempty"`   // bytes
	Mode   uint32 `json:"mode,omitempty"`   // permission bits
	Target string `json:"target,omitempty"` // symlink target when this is a link
}

// Exec asks for one process. From a client (OpRun), Node says where, ID
// is the client's own (non-zero, unique on its connection; the OpAttach
// streams of that process on the client hop carry it) and Cred is
// ignored (the master takes it from SO_PEERCRED); from the master to a
// slave, ID is the master's, Cred is set and Node is the receiving node.
type Exec struct {
	// Version is the client's wire Version (OpRun); the master answers
	// another with CodeVersion. Not set towards a node (Hello says it).
	Version int       `json:"version,omitempty"`
	ID      uint64    `json:"id"`
	Node    int       `json:"node"`
	Path    string    `json:"path"` // absolute path of the program on the master
	Argv    []string  `json:"argv"`
	Env     []string  `json:"env"`
	Dir     string    `json:"dir"`
	Cred    Cred      `json:"cred"`
	Rlim    []Rlimit  `json:"rlimits,omitempty"`
	Files   []FileRef `json:"files,omitempty"` // program + library closure (master → slave)
	NoIO    bool      `json:"noio,omitempty"`  // bpsh -N: no stdio streams at all
	// NoStdin: the process reads /dev/null (or its -I file) and no FD 0
	// stream is opened, on either hop.
	NoStdin bool `json:"nostdin,omitempty"`
	// Remote-side redirections (bpsh -I -O -E): paths on the node.
	Stdin  string `json:"stdin,omitempty"`
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
	// Ghost is the pid of the client (bpsh) that started this process on
	// the master; filled in by the master. (The process's own ghost comes
	// later, from the client: Signal.Ghost.)
	Ghost int `json:"ghost,omitempty"`
	// Restore (master → slave only): restore a moved process, see Restore.
	Restore *Restore `json:"restore,omitempty"`
	// Fork (client → master, OpRun): adopt the forked copy the master
	// announced with this id (Update.Fork) instead of starting Path: it
	// runs as the process it was copied from, with that exec's program,
	// arguments, environment and directory, whatever this Exec says of
	// them. Its stdin is /dev/null (NoStdin is implied).
	Fork uint64 `json:"fork,omitempty"`
}

// Need lists the closure hashes a slave does not have cached.
type Need struct {
	Hashes []string `json:"hashes"`
}

// FileHeader precedes Size raw bytes of file content with this Hash.
type FileHeader struct {
	Hash string `json:"hash"`
	Size int64  `json:"size"`
}

// Started reports a running process.
type Started struct {
	PID int `json:"pid"` // pid on the node
	// Sent is how many bytes of program files the node had to be sent for
	// this run (0: all cached); set by the master for its client.
	Sent int64 `json:"sent,omitempty"`
}

// ExecReply is an exec's first reply as its receiver reads it (the
// master from a node, a client from the master): the sender writes
// Started, or the Result of a failure before the process ran (Err set),
// and this one type decodes either frame.
type ExecReply struct {
	Started
	Result
}

// Failed reports whether the process did not start (Result holds why).
func (r ExecReply) Failed() bool { return r.Err != "" }

// Result ends an operation: Err is a failure before or instead of running;
// for a process, Status is its exit code or Signal the signal that killed it.
// A failure is data (see Error, Fail, Failure): Err is the message for
// people, never prefixed with the node; Code its kind; Node the node it
// is about (absent: none, or the master itself); Version, with
// CodeVersion, the Version its sender speaks.
type Result struct {
	Err     string `json:"err,omitempty"`
	Code    Code   `json:"code,omitempty"`
	Node    *int   `json:"node,omitempty"`
	Version int    `json:"version,omitempty"`
	Status  int    `json:"status"`
	Signal  int    `json:"signal,omitempty"`
	// Opened (an exec's last Result only) names the output streams its
	// sender opened for the process: OpenedStdout, OpenedStderr; the node
	// towards the master, the master towards its client. The receiver
	// copies their bytes before it acts on the Result.
	Opened uint8 `json:"opened,omitempty"`
	// Moved (node → master): the process left this node (OpCheckpoint's
	// Verdict): the exec goes on where it moved to.
	Moved bool `json:"moved,omitempty"`
	// Usage (an exec's last Result only) is what the job used in all,
	// read once everything of it had ended, just before its cgroup was
	// removed; absent when the process never ran.
	Usage *Usage `json:"usage,omitempty"`
}

// ClientTooOld is the Result.Err (CodeVersion) a master answers a
// client's OpExec with: until Version 3 clients sent OpExec and opened
// their own output streams; since 4 they send OpRun and the master opens
// them.
const ClientTooOld = "this client speaks an older beo protocol than bpmaster (wire version 3 or older, exec op \"exec\"): use the bpsh/bproc of the master's build"

// Result.Opened bits.
const (
	OpenedStdout uint8 = 1 << iota
	OpenedStderr
)

// OpenedFD is the Result.Opened bit of output descriptor fd (1 or 2).
func OpenedFD(fd int) uint8 { return 1 << (fd - 1) }

// Signal delivers a signal to a running process (on its exec stream):
// to its whole process group, or with PID to that one process of the
// job (the job's own process, or a child on the node an Update named:
// what a ghost forwards). From a client, Sig 0 with Ghost set is no
// signal: it tells the master the pid of the ghost standing for PID
// (the job's process if PID is 0), for bpstat -p. From the master,
// Stopped is the continue of a process that stops itself to move or
// fork (pkg/bproc moveSelf) after the move failed: the node sends it
// once the job's process has stopped, since a SIGCONT that came before
// the stop would be lost and leave the process stopped for good; if it
// does not stop within a few seconds, it runs, and nothing is sent.
// Hangup (from the master, no Sig) is the client gone: the node hangs
// the job up as it does when the master is gone — SIGHUP and SIGCONT,
// the whole job killed a grace period later if it still runs, its
// output dropped from then on — and still sends the Result.
type Signal struct {
	Sig     int  `json:"sig"`
	PID     int  `json:"pid,omitempty"`
	Ghost   int  `json:"ghost,omitempty"`
	Stopped bool `json:"stopped,omitempty"`
	Hangup  bool `json:"hangup,omitempty"`
}

// Update is a frame an exec stream may carry between Started and the
// Result, node → master → client: the job's processes on the node
// changed (pkg/slave kids.go). Each entry is a process that appeared,
// exec'd (new Argv) or ended (Gone); the job's own process appears only
// when it exec's.
type Update struct {
	Procs []ProcChange `json:"procs,omitempty"`
	// Moved (master → client): the job's process now runs on node
	// *Moved (OpMove); Procs names it with its pid there.
	Moved *int `json:"moved,omitempty"`
	// Fork (master → client): the job's process forked a copy of itself
	// onto another node, for the client to adopt (see Fork).
	Fork *Fork `json:"fork,omitempty"`
	// Usage (node → master only) is what the job has used so far: sent
	// about a second into the job and then every usage interval of the
	// node (pkg/slave usage.go). The master keeps the latest for beostat
	// and /metrics and does not pass it on; an Update with Usage alone
	// never reaches the client.
	Usage *Usage `json:"usage,omitempty"`
}

// Usage is what a job has used on its node: the accounting of its
// cgroup — every process it ever had there, the ones that ended too —
// read when the job was At old (the node's clock: rates need no
// synchronised clocks). A count the node cannot account is -1: a cgroup
// controller not enabled there, a kernel without the file (pkg/cgroup
// Usage).
//
// Without a cgroup for the job (a bpslave that may not make one), only
// the final Usage, in the Result, is sent, from the job's process's
// rusage: its own CPU time and that of the children it waited for, its
// peak resident set; Tree is false then.
type Usage struct {
	At     time.Duration `json:"at"`
	CPU    time.Duration `json:"cpu"` // user + system
	User   time.Duration `json:"user"`
	System time.Duration `json:"system"`
	// Mem is the memory charged to the job's cgroup (memory.current:
	// anonymous memory, page cache, kernel memory), or with MemRSS, where
	// the memory controller is off, the sum of its processes' resident
	// sets. MemPeak is the highest: memory.peak, or the highest the node
	// saw (readings, the processes' VmHWM, the job's process's rusage).
	Mem     int64 `json:"mem"`
	MemPeak int64 `json:"mem_peak"`
	MemRSS  bool  `json:"mem_rss,omitempty"`
	// OOMKills counts processes of the job the kernel's OOM killer
	// killed (memory.events).
	OOMKills int64 `json:"oom_kills"`
	// Tasks are the job's processes and threads now; TasksPeak the most
	// it had (pids.peak, or the most the node saw).
	Tasks     int64 `json:"tasks"`
	TasksPeak int64 `json:"tasks_peak"`
	// ReadBytes and WriteBytes reached block devices (io.stat).
	ReadBytes  int64 `json:"read_bytes"`
	WriteBytes int64 `json:"write_bytes"`
	// Tree: the job's whole process tree (its cgroup); false: its
	// process and the children it waited for (rusage, Result only).
	Tree bool `json:"tree"`
}

// ProcChange is one process of an Update. The job's own process is
// reported Gone, with how it ended, when it exits while its children
// keep the job going (they hold its output); the Result follows when
// they are done.
type ProcChange struct {
	PID  int      `json:"pid"`
	Argv []string `json:"argv,omitempty"`
	// PGID is a new process's process group on its node (0: unknown, or
	// not a new process), so that its ghost joins the ghosts of the same
	// group: kill -- -PGID on the master reaches them all.
	PGID   int  `json:"pgid,omitempty"`
	Gone   bool `json:"gone,omitempty"`
	Status int  `json:"status,omitempty"` // Gone: its exit code (a child's if the node knows it)
	Signal int  `json:"signal,omitempty"` // Gone: the signal that killed it
}

// Event is what a reader of an exec stream decodes after Started: an
// Update frame (Update set, Result nil) or the Result.
type Event struct {
	*Result
	Update *Update `json:"update,omitempty"`
}

// Attach binds a raw stdio stream to exec ID. FD 0 is opened by the side
// with the input (client → master → node), FD 1 and 2 by the side with
// the output (node → master → client), see the package doc.
type Attach struct {
	ID uint64 `json:"id"`
	FD int    `json:"fd"` // 0 stdin, 1 stdout, 2 stderr
}

// File is a bpcp transfer: the content follows as a tar stream.
type File struct {
	Node      int    `json:"node"`
	Path      string `json:"path"`
	Recursive bool   `json:"recursive,omitempty"`
	Preserve  bool   `json:"preserve,omitempty"`
	Cred      Cred   `json:"cred"`
	// Sources (client → master OpPut only): absolute, clean paths on the
	// master that the master packs itself, reading them as the caller; no
	// tar stream follows from the client. Never sent to a node.
	Sources []string `json:"sources,omitempty"`
}

// SourcesRefused is the Result.Err of an OpPut with Sources that the
// master will not read for this caller: it cannot take the caller's
// filesystem identity (a master not running as root, serving another
// user), or the caller sees another filesystem (another mount namespace
// or root directory). The client then sends the tar stream itself.
const SourcesRefused = "master cannot read the sources as the caller"

// Control changes nodes (bpctl). Actions run in order.
type Control struct {
	Nodes     []int   `json:"nodes,omitempty"`
	State     string  `json:"state,omitempty"`      // -s
	Power     string  `json:"power,omitempty"`      // "reboot", "halt", "pwroff" (-R -H -P)
	Mode      *uint32 `json:"mode,omitempty"`       // -m
	UID       *uint32 `json:"uid,omitempty"`        // -u
	GID       *uint32 `json:"gid,omitempty"`        // -g
	ForgetKey bool    `json:"forget_key,omitempty"` // drop the node's pinned key
	Reconnect bool    `json:"reconnect,omitempty"`
}

// Kill signals a remote process known to the master, by its node and
// remote pid, or by the ghost (client) pid.
type Kill struct {
	Node  int `json:"node"`
	PID   int `json:"pid"`
	Ghost int `json:"ghost,omitempty"`
	Sig   int `json:"sig"`
}

// Lib edits or lists the prestaged library list (bplib).
type Lib struct {
	Add    []string `json:"add,omitempty"`
	Delete []string `json:"delete,omitempty"`
}

// LibList is the library list after a Lib request; Err and Code as in
// Result.
type LibList struct {
	Paths []string `json:"paths"`
	Err   string   `json:"err,omitempty"`
	Code  Code     `json:"code,omitempty"`
}

// NodeInfo is one node as clients see it.
type NodeInfo struct {
	Node  int       `json:"node"`
	State string    `json:"state"`
	Addr  string    `json:"addr,omitempty"`
	MACs  []string  `json:"macs,omitempty"`
	Mode  uint32    `json:"mode"`
	UID   uint32    `json:"uid"`
	GID   uint32    `json:"gid"`
	User  string    `json:"user"`
	Group string    `json:"group"`
	Since time.Time `json:"since"`
}

// Status is the whole node table.
type Status struct {
	MasterAddr string      `json:"master_addr,omitempty"`
	Nodes      []NodeInfo  `json:"nodes"`
	Master     *MasterInfo `json:"master,omitempty"` // for `beo master status`
}

// MasterInfo describes the running bpmaster.
type MasterInfo struct {
	PID     int       `json:"pid"`
	Build   string    `json:"build,omitempty"`
	Config  string    `json:"config,omitempty"`
	Started time.Time `json:"started"`
}

// States is every node's state, indexed by node number: what a client
// needs to resolve a node spec, without the rest of Status (a thousand
// nodes' Status is ~150 KB of JSON; their States ~10 KB).
type States struct {
	States []string `json:"states"`
}

// Proc is one remote process known to the master.
type Proc struct {
	Node int `json:"node"`
	PID  int `json:"pid"` // on the node
	// Ghost is the local pid standing for it: its ghost (pkg/ghost), or
	// the client's pid until the ghost is there (a process that lives
	// a few milliseconds never gets one).
	Ghost   int       `json:"ghost"`
	Client  int       `json:"client,omitempty"` // local pid of the bpsh (or other client) that started the job
	Parent  int       `json:"parent,omitempty"` // for a node-side child: the PID of the job's process
	UID     uint32    `json:"uid"`
	Argv    []string  `json:"argv"`
	Started time.Time `json:"started"`
}

// Procs lists remote processes.
type Procs struct {
	Procs []Proc `json:"procs"`
}
